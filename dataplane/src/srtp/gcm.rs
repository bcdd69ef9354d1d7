//! AEAD_AES_128_GCM for SRTP and SRTCP (RFC 7714) on ring.
//!
//! ring seals and opens in place with the AAD as a separate slice, so SRTP needs no
//! copy: the header is the AAD and the payload is encrypted where it lies. SRTCP's AAD
//! is not contiguous (its E|index word trails the tag), so those 12 bytes are assembled
//! on the stack.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};

use super::kdf::SessionKeys;
use super::profile::GCM_TAG_LEN;
use super::SrtpError;

/// Session state for one packet kind (SRTP or SRTCP) under AEAD_AES_128_GCM.
pub(crate) struct GcmKey {
    key: LessSafeKey,
    salt: [u8; 12],
}

impl GcmKey {
    pub fn new(keys: &SessionKeys) -> Result<Self, SrtpError> {
        let unbound =
            UnboundKey::new(&AES_128_GCM, &keys.key).map_err(|_| SrtpError::BadKeyingMaterial)?;
        let mut salt = [0u8; 12];
        salt.copy_from_slice(&keys.salt[..12]);
        Ok(Self {
            key: LessSafeKey::new(unbound),
            salt,
        })
    }

    /// RFC 7714 §8.1: 00 00 || SSRC || ROC || SEQ, XOR the session salt.
    #[inline]
    pub fn rtp_nonce(&self, ssrc: u32, index: u64) -> Nonce {
        let mut iv = [0u8; 12];
        iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
        // ROC || SEQ is exactly the 48-bit index.
        iv[6..12].copy_from_slice(&index.to_be_bytes()[2..]);
        self.finish_nonce(iv)
    }

    /// RFC 7714 §9.1: 00 00 || SSRC || 00 00 || 0 || SRTCP index, XOR the session salt.
    #[inline]
    pub fn rtcp_nonce(&self, ssrc: u32, index: u32) -> Nonce {
        let mut iv = [0u8; 12];
        iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
        iv[8..12].copy_from_slice(&(index & 0x7fff_ffff).to_be_bytes());
        self.finish_nonce(iv)
    }

    #[inline]
    fn finish_nonce(&self, mut iv: [u8; 12]) -> Nonce {
        for (d, s) in iv.iter_mut().zip(self.salt) {
            *d ^= s;
        }
        Nonce::assume_unique_for_key(iv)
    }

    /// Encrypts `data` in place and returns the tag.
    #[inline]
    pub fn seal(
        &self,
        nonce: Nonce,
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<[u8; GCM_TAG_LEN], SrtpError> {
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), data)
            // Only reachable for inputs far beyond any UDP datagram.
            .map_err(|_| SrtpError::Malformed)?;
        let mut out = [0u8; GCM_TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Authenticates and decrypts `ciphertext_and_tag` in place; the plaintext is its
    /// first `len - 16` bytes. On failure the buffer contents are unspecified.
    #[inline]
    pub fn open(
        &self,
        nonce: Nonce,
        aad: &[u8],
        ciphertext_and_tag: &mut [u8],
    ) -> Result<(), SrtpError> {
        self.key
            .open_in_place(nonce, Aad::from(aad), ciphertext_and_tag)
            .map(|_| ())
            .map_err(|_| SrtpError::AuthFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc7714_key() -> GcmKey {
        let mut salt = [0u8; 14];
        salt[..12].copy_from_slice(&hex::decode("517569642070726f2071756f").unwrap());
        GcmKey::new(&SessionKeys {
            key: hex::decode("000102030405060708090a0b0c0d0e0f")
                .unwrap()
                .try_into()
                .unwrap(),
            salt,
            auth: [0; 20],
        })
        .unwrap()
    }

    /// RFC 7714 §16.1 and §17.1 list the IVs.
    #[test]
    fn rfc7714_ivs() {
        let key = rfc7714_key();
        assert_eq!(
            hex::encode(key.rtp_nonce(0x5501_a0b2, 0xf17b).as_ref()),
            "51753c6580c2726f20718414"
        );
        assert_eq!(
            hex::encode(key.rtcp_nonce(0x4d61_7273, 0x5d4).as_ref()),
            "517524055203726f207170bb"
        );
    }
}
