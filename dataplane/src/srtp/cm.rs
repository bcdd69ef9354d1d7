//! AES-128 counter mode (RFC 3711 §4.1.1) and HMAC-SHA1-80 (§4.2.1).
//!
//! All per-key work (AES key schedule, HMAC inner/outer pad states) happens once in
//! [`CmKey::new`]; per packet both are cloned (a memcpy), never recomputed.

use aes::cipher::{InnerIvInit, KeyInit, StreamCipher};
use aes::Aes128Enc;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::kdf::SessionKeys;
use super::profile::CM_TAG_LEN;
use super::SrtpError;

type Ctr = ctr::Ctr128BE<Aes128Enc>;
type CtrCore = ctr::CtrCore<Aes128Enc, ctr::flavors::Ctr128BE>;

/// Session state for one packet kind (SRTP or SRTCP) under AES_CM_HMAC_SHA1_80.
#[derive(Clone)]
pub(crate) struct CmKey {
    aes: Aes128Enc,
    salt: [u8; 14],
    mac: Hmac<Sha1>,
}

impl CmKey {
    pub fn new(keys: &SessionKeys) -> Self {
        Self {
            aes: Aes128Enc::new(&keys.key.into()),
            salt: keys.salt,
            // HMAC accepts keys of any length, so this cannot fail; keep the fallback
            // total anyway rather than unwrap.
            mac: <Hmac<Sha1> as Mac>::new_from_slice(&keys.auth)
                .unwrap_or_else(|_| <Hmac<Sha1> as KeyInit>::new(&Default::default())),
        }
    }

    /// XORs the keystream for (`ssrc`, `index`) into `data`: encrypts and decrypts.
    #[inline]
    pub fn apply_keystream(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        // IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16)
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (d, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *d ^= s;
        }
        // The 48-bit index occupies bytes 8..14.
        for (d, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *d ^= s;
        }
        // Copying the expanded key measured slightly faster than borrowing it: the
        // schedule then sits on the stack next to the counter blocks.
        let core = CtrCore::inner_iv_init(self.aes.clone(), &iv.into());
        let mut ctr = Ctr::from_core(core);
        ctr.apply_keystream(data);
    }

    /// HMAC-SHA1 over `data || suffix`, truncated to 80 bits. SRTP's suffix is the ROC;
    /// SRTCP's is empty because its E|index word is already inside `data`.
    #[inline]
    pub fn tag(&self, data: &[u8], suffix: &[u8]) -> [u8; CM_TAG_LEN] {
        let mut mac = self.mac.clone();
        mac.update(data);
        mac.update(suffix);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; CM_TAG_LEN];
        tag.copy_from_slice(&full[..CM_TAG_LEN]);
        tag
    }

    /// Constant-time check of a received 80-bit tag.
    #[inline]
    pub fn verify(&self, data: &[u8], suffix: &[u8], tag: &[u8]) -> Result<(), SrtpError> {
        let mut mac = self.mac.clone();
        mac.update(data);
        mac.update(suffix);
        mac.verify_truncated_left(tag)
            .map_err(|_| SrtpError::AuthFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3711 Appendix B.2: the keystream for SSRC 0, index 0 under the given
    /// session key and salt, including blocks past the 8-bit counter boundary.
    #[test]
    fn rfc3711_b2_keystream() {
        let mut salt = [0u8; 14];
        salt.copy_from_slice(&hex::decode("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").unwrap());
        let keys = SessionKeys {
            key: hex::decode("2B7E151628AED2A6ABF7158809CF4F3C")
                .unwrap()
                .try_into()
                .unwrap(),
            salt,
            auth: [0; 20],
        };
        let key = CmKey::new(&keys);
        let mut ks = vec![0u8; 16 * 0xff02];
        key.apply_keystream(0, 0, &mut ks);
        let block = |i: usize| hex::encode_upper(&ks[16 * i..16 * (i + 1)]);
        assert_eq!(block(0), "E03EAD0935C95E80E166B16DD92B4EB4");
        assert_eq!(block(1), "D23513162B02D0F72A43A2FE4A5F97AB");
        assert_eq!(block(2), "41E95B3BB0A2E8DD477901E4FCA894C0");
        assert_eq!(block(0xfeff), "EC8CDF7398607CB0F2D21675EA9EA1E4");
        assert_eq!(block(0xff00), "362B7C3C6773516318A077D7FC5073AE");
        assert_eq!(block(0xff01), "6A2CC3787889374FBEB4C81B17BA6C44");
    }

    #[test]
    fn tag_verifies_and_rejects() {
        let keys = SessionKeys {
            key: [1; 16],
            salt: [2; 14],
            auth: [3; 20],
        };
        let key = CmKey::new(&keys);
        let tag = key.tag(b"hello", &[0, 0, 0, 1]);
        assert_eq!(key.verify(b"hello", &[0, 0, 0, 1], &tag), Ok(()));
        assert_eq!(
            key.verify(b"hello", &[0, 0, 0, 2], &tag),
            Err(SrtpError::AuthFailed)
        );
        assert_eq!(
            key.verify(b"hellO", &[0, 0, 0, 1], &tag),
            Err(SrtpError::AuthFailed)
        );
    }
}
