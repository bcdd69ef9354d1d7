//! Protection profiles (RFC 5764 §4.1.2, RFC 7714 §14.2) and master keys.

use super::SrtpError;

/// The two DTLS-SRTP protection profiles sfud negotiates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SrtpProfile {
    /// AES-128 counter mode + HMAC-SHA1 truncated to 80 bits: what every browser offers.
    Aes128CmHmacSha1_80,
    /// AEAD AES-128-GCM with a 16-byte tag (RFC 7714): preferred, cheaper per packet.
    AeadAes128Gcm,
}

/// Length of the HMAC-SHA1-80 tag.
pub(crate) const CM_TAG_LEN: usize = 10;
/// Length of the AES-GCM tag.
pub(crate) const GCM_TAG_LEN: usize = 16;
/// The E-flag|SRTCP-index word every SRTCP packet carries.
pub(crate) const SRTCP_INDEX_LEN: usize = 4;

impl SrtpProfile {
    /// Parses the profile name OpenSSL reports for the negotiated `use_srtp` extension.
    pub fn from_openssl_name(name: &str) -> Option<Self> {
        match name {
            "SRTP_AES128_CM_SHA1_80" => Some(Self::Aes128CmHmacSha1_80),
            "SRTP_AEAD_AES_128_GCM" => Some(Self::AeadAes128Gcm),
            _ => None,
        }
    }

    /// The name OpenSSL uses in `SSL_CTX_set_tlsext_use_srtp` profile lists.
    pub fn openssl_name(self) -> &'static str {
        match self {
            Self::Aes128CmHmacSha1_80 => "SRTP_AES128_CM_SHA1_80",
            Self::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
        }
    }

    /// The two-byte SRTPProtectionProfile value on the DTLS wire.
    pub const fn id(self) -> u16 {
        match self {
            Self::Aes128CmHmacSha1_80 => 0x0001,
            Self::AeadAes128Gcm => 0x0007,
        }
    }

    pub const fn master_key_len(self) -> usize {
        16
    }

    pub const fn master_salt_len(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 => 14,
            Self::AeadAes128Gcm => 12,
        }
    }

    /// Length of the authentication tag appended to every packet.
    pub const fn tag_len(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 => CM_TAG_LEN,
            Self::AeadAes128Gcm => GCM_TAG_LEN,
        }
    }

    /// Bytes `protect_rtp` appends.
    pub const fn rtp_overhead(self) -> usize {
        self.tag_len()
    }

    /// Bytes `protect_rtcp` appends: the E|index word and the tag.
    pub const fn rtcp_overhead(self) -> usize {
        SRTCP_INDEX_LEN + self.tag_len()
    }

    /// How many bytes DTLS must export ("EXTRACTOR-dtls_srtp") for this profile.
    pub const fn keying_material_len(self) -> usize {
        2 * (self.master_key_len() + self.master_salt_len())
    }
}

/// One direction's master key and salt, as exported by DTLS.
#[derive(Clone)]
pub struct MasterKey {
    pub profile: SrtpProfile,
    pub key: [u8; 16],
    /// GCM uses the first 12 bytes; the rest stays zero.
    pub salt: [u8; 14],
}

impl MasterKey {
    /// The salt bytes that are meaningful for the profile.
    pub fn salt(&self) -> &[u8] {
        let n = self.profile.master_salt_len();
        &self.salt[..n]
    }
}

// Keys must never land in logs.
impl core::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MasterKey")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// RFC 5764 §4.2 layout: client_write_key | server_write_key | client_write_salt | server_write_salt.
/// Returns (key we protect with, key we unprotect with).
pub fn split_keying_material(
    profile: SrtpProfile,
    material: &[u8],
    we_are_dtls_server: bool,
) -> Result<(MasterKey, MasterKey), SrtpError> {
    if material.len() != profile.keying_material_len() {
        return Err(SrtpError::BadKeyingMaterial);
    }
    let kl = profile.master_key_len();
    let sl = profile.master_salt_len();
    let (keys, salts) = material.split_at(2 * kl);
    let (client_key, server_key) = keys.split_at(kl);
    let (client_salt, server_salt) = salts.split_at(sl);
    let build = |key: &[u8], salt: &[u8]| -> Result<MasterKey, SrtpError> {
        let mut mk = MasterKey {
            profile,
            key: key.try_into().map_err(|_| SrtpError::BadKeyingMaterial)?,
            salt: [0; 14],
        };
        mk.salt
            .get_mut(..salt.len())
            .ok_or(SrtpError::BadKeyingMaterial)?
            .copy_from_slice(salt);
        Ok(mk)
    };
    let client = build(client_key, client_salt)?;
    let server = build(server_key, server_salt)?;
    Ok(if we_are_dtls_server {
        (server, client)
    } else {
        (client, server)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in [SrtpProfile::Aes128CmHmacSha1_80, SrtpProfile::AeadAes128Gcm] {
            assert_eq!(SrtpProfile::from_openssl_name(p.openssl_name()), Some(p));
        }
        assert_eq!(
            SrtpProfile::from_openssl_name("SRTP_AES128_CM_SHA1_32"),
            None
        );
    }

    #[test]
    fn lengths() {
        let cm = SrtpProfile::Aes128CmHmacSha1_80;
        let gcm = SrtpProfile::AeadAes128Gcm;
        assert_eq!(
            (
                cm.rtp_overhead(),
                cm.rtcp_overhead(),
                cm.keying_material_len()
            ),
            (10, 14, 60)
        );
        assert_eq!(
            (
                gcm.rtp_overhead(),
                gcm.rtcp_overhead(),
                gcm.keying_material_len()
            ),
            (16, 20, 56)
        );
    }

    /// Material bytes are their own offsets, so each field's position is checkable.
    #[test]
    fn split_rfc5764_layout() {
        let cm = SrtpProfile::Aes128CmHmacSha1_80;
        let material: Vec<u8> = (0..60).collect();
        let (tx, rx) = split_keying_material(cm, &material, true).unwrap();
        let client_key: Vec<u8> = (0..16).collect();
        let server_key: Vec<u8> = (16..32).collect();
        let client_salt: Vec<u8> = (32..46).collect();
        let server_salt: Vec<u8> = (46..60).collect();
        assert_eq!(&tx.key[..], &server_key[..]);
        assert_eq!(&tx.salt[..], &server_salt[..]);
        assert_eq!(&rx.key[..], &client_key[..]);
        assert_eq!(&rx.salt[..], &client_salt[..]);
        let (tx_c, rx_c) = split_keying_material(cm, &material, false).unwrap();
        assert_eq!((tx_c.key, tx_c.salt), (rx.key, rx.salt));
        assert_eq!((rx_c.key, rx_c.salt), (tx.key, tx.salt));

        let gcm = SrtpProfile::AeadAes128Gcm;
        let material: Vec<u8> = (0..56).collect();
        let (tx, rx) = split_keying_material(gcm, &material, true).unwrap();
        assert_eq!(&tx.key[..], &server_key[..]);
        assert_eq!(&rx.key[..], &client_key[..]);
        assert_eq!(rx.salt(), &(32..44).collect::<Vec<u8>>()[..]);
        assert_eq!(tx.salt(), &(44..56).collect::<Vec<u8>>()[..]);
        assert_eq!(&tx.salt[12..], &[0, 0]);

        assert_eq!(
            split_keying_material(gcm, &[0; 60], true).unwrap_err(),
            SrtpError::BadKeyingMaterial
        );
        assert_eq!(
            split_keying_material(cm, &[0; 59], false).unwrap_err(),
            SrtpError::BadKeyingMaterial
        );
    }
}
