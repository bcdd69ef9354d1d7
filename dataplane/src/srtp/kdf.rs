//! Session key derivation (RFC 3711 §4.3) with the AES-CM PRF and kdr = 0.
//!
//! With kdr = 0 the packet index never enters the derivation, so a context derives
//! its six session keys once at creation and never again.

use aes::cipher::{KeyIvInit, StreamCipher};
use aes::Aes128Enc;

use super::profile::{MasterKey, SrtpProfile};

type Aes128Ctr = ctr::Ctr128BE<Aes128Enc>;

/// RFC 3711 §4.3.1 labels; RTCP's are the RTP ones plus 3.
const LABEL_ENCRYPTION: u8 = 0;
const LABEL_AUTH: u8 = 1;
const LABEL_SALT: u8 = 2;
const RTCP_LABEL_OFFSET: u8 = 3;

/// Session keys of one of the two packet kinds (SRTP or SRTCP).
#[derive(Clone)]
pub(crate) struct SessionKeys {
    pub key: [u8; 16],
    /// CM uses all 14 bytes; GCM the first 12 (RFC 7714 §11), the rest is zero.
    pub salt: [u8; 14],
    /// HMAC-SHA1 key; unused (zero) under GCM.
    pub auth: [u8; 20],
}

/// Fills `out` with the PRF output for `label`.
pub(crate) fn derive(master: &MasterKey, label: u8, out: &mut [u8]) {
    // x = key_id XOR master_salt, key_id = label || index DIV kdr (48 zero bits), then
    // the PRF input is x * 2^16. A 12-byte GCM salt is zero-padded to 14 bytes first,
    // as libsrtp does, so the label still lands on byte 7.
    let mut iv = [0u8; 16];
    let salt = master.salt();
    if let Some(dst) = iv.get_mut(..salt.len()) {
        dst.copy_from_slice(salt);
    }
    iv[7] ^= label;
    let mut prf = Aes128Ctr::new(&master.key.into(), &iv.into());
    out.fill(0);
    prf.apply_keystream(out);
}

/// Derives the SRTP (`rtcp == false`) or SRTCP session keys.
pub(crate) fn session_keys(master: &MasterKey, rtcp: bool) -> SessionKeys {
    let base = if rtcp { RTCP_LABEL_OFFSET } else { 0 };
    let mut keys = SessionKeys {
        key: [0; 16],
        salt: [0; 14],
        auth: [0; 20],
    };
    derive(master, base + LABEL_ENCRYPTION, &mut keys.key);
    let salt_len = master.profile.master_salt_len();
    derive(master, base + LABEL_SALT, &mut keys.salt[..salt_len]);
    if master.profile == SrtpProfile::Aes128CmHmacSha1_80 {
        derive(master, base + LABEL_AUTH, &mut keys.auth);
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b3_master() -> MasterKey {
        let mut salt = [0u8; 14];
        salt.copy_from_slice(&hex::decode("0EC675AD498AFEEBB6960B3AABE6").unwrap());
        MasterKey {
            profile: SrtpProfile::Aes128CmHmacSha1_80,
            key: hex::decode("E1F97A0D3E018BE0D64FA32C06DE4139")
                .unwrap()
                .try_into()
                .unwrap(),
            salt,
        }
    }

    /// RFC 3711 Appendix B.3.
    #[test]
    fn rfc3711_b3_key_derivation() {
        let master = b3_master();
        let keys = session_keys(&master, false);
        assert_eq!(
            hex::encode_upper(keys.key),
            "C61E7A93744F39EE10734AFE3FF7A087"
        );
        assert_eq!(hex::encode_upper(keys.salt), "30CBBC08863D8C85D49DB34A9AE1");
        assert_eq!(
            hex::encode_upper(keys.auth),
            "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"
        );
        // B.3 lists the full 94-byte auth PRF output: the 20 bytes above are its prefix
        // and the tail checks that the counter runs past one block correctly.
        let mut long = [0u8; 94];
        derive(&master, 1, &mut long);
        assert_eq!(
            hex::encode_upper(long),
            "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCE\
             E049646C43D9327AD175578EF72270986371C10C9A369AC2F94A8C5FBCDDDC25\
             6D6E919A48B610EF17C2041E474035766B68642C59BBFC2F34DB60DBDFB2"
        );
    }
}
