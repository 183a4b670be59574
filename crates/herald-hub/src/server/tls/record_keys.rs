//! TLS 1.3 record protection that keeps a connection's keys as the raw
//! bytes the handshake derived, and expands them for each record.
//!
//! rustls's ring provider gives every connection two boxed ring keys, one
//! per direction, each holding the expanded AES key schedule and GHASH
//! table: 560 bytes each, 1,280 in jemalloc's classes, a quarter of what
//! an idle HTTPS subscriber costs the hub. An idle subscriber uses neither
//! key for minutes at a time, so here a key is its 16 or 32 bytes and the
//! IV, and each record builds ring's key on the stack, seals or opens,
//! and drops it. That costs a key expansion per record, far less than
//! the record's own encryption and the system call that sends it
//! (`benches/record_keys.rs` measures both).
//!
//! The sealing and opening are ring's, with rustls's own nonce, additional
//! data and padding helpers, so the records are byte for byte those of
//! rustls's ring provider (tested against it). TLS 1.2 suites, which
//! browsers no longer choose, are rustls's ring suites unchanged.

use std::sync::LazyLock;

use ring::aead;
use rustls::crypto::cipher::{
    make_tls13_aad, AeadKey, InboundOpaqueMessage, InboundPlainMessage, Iv, MessageDecrypter,
    MessageEncrypter, Nonce, OutboundOpaqueMessage, OutboundPlainMessage, PrefixedPayload,
    Tls13AeadAlgorithm, UnsupportedOperationError,
};
use rustls::crypto::CryptoProvider;
use rustls::{
    CipherSuite, CipherSuiteCommon, ConnectionTrafficSecrets, ContentType, Error, ProtocolVersion,
    SupportedCipherSuite, Tls13CipherSuite,
};

/// rustls's ring provider, with its TLS 1.3 suites protecting records
/// through raw keys.
pub(crate) fn provider() -> CryptoProvider {
    let ring = rustls::crypto::ring::default_provider();
    let cipher_suites = ring
        .cipher_suites
        .iter()
        .map(|&suite| raw_key_suite(suite))
        .collect();
    CryptoProvider {
        cipher_suites,
        ..ring
    }
}

/// `suite` with its records protected by [`RawKeyAead`], when it is one
/// of ring's TLS 1.3 suites; else `suite` itself.
fn raw_key_suite(suite: SupportedCipherSuite) -> SupportedCipherSuite {
    // Made once: rustls holds suites by `&'static`.
    static SUITES: LazyLock<Vec<Tls13CipherSuite>> = LazyLock::new(|| {
        RAW_KEY_AEADS
            .iter()
            .filter_map(|aead| {
                rustls::crypto::ring::ALL_CIPHER_SUITES
                    .iter()
                    .find_map(|suite| match suite {
                        SupportedCipherSuite::Tls13(ring) if ring.common.suite == aead.suite => {
                            Some(Tls13CipherSuite {
                                common: CipherSuiteCommon {
                                    suite: ring.common.suite,
                                    hash_provider: ring.common.hash_provider,
                                    confidentiality_limit: ring.common.confidentiality_limit,
                                },
                                hkdf_provider: ring.hkdf_provider,
                                aead_alg: aead,
                                quic: ring.quic,
                            })
                        }
                        _ => None,
                    })
            })
            .collect()
    });
    match suite {
        SupportedCipherSuite::Tls13(ring) => SUITES
            .iter()
            .find(|lean| lean.common.suite == ring.common.suite)
            .map_or(suite, SupportedCipherSuite::Tls13),
        SupportedCipherSuite::Tls12(_) => suite,
    }
}

/// The AEADs of ring's three TLS 1.3 suites.
static RAW_KEY_AEADS: [RawKeyAead; 3] = [
    RawKeyAead {
        suite: CipherSuite::TLS13_AES_256_GCM_SHA384,
        algorithm: &aead::AES_256_GCM,
        secrets: |key, iv| ConnectionTrafficSecrets::Aes256Gcm { key, iv },
    },
    RawKeyAead {
        suite: CipherSuite::TLS13_AES_128_GCM_SHA256,
        algorithm: &aead::AES_128_GCM,
        secrets: |key, iv| ConnectionTrafficSecrets::Aes128Gcm { key, iv },
    },
    RawKeyAead {
        suite: CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
        algorithm: &aead::CHACHA20_POLY1305,
        secrets: |key, iv| ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv },
    },
];

/// One TLS 1.3 suite's AEAD, handing out encrypters and decrypters that
/// hold raw keys.
struct RawKeyAead {
    suite: CipherSuite,
    algorithm: &'static aead::Algorithm,
    /// The keys as [`ConnectionTrafficSecrets`], for kernel TLS offload.
    secrets: fn(AeadKey, Iv) -> ConnectionTrafficSecrets,
}

impl Tls13AeadAlgorithm for RawKeyAead {
    fn encrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageEncrypter> {
        Box::new(RawKeyEncrypter {
            key: RawKey {
                algorithm: self.algorithm,
                key,
                iv,
            },
        })
    }

    fn decrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageDecrypter> {
        Box::new(RawKeyDecrypter {
            key: RawKey {
                algorithm: self.algorithm,
                key,
                iv,
            },
        })
    }

    fn key_len(&self) -> usize {
        self.algorithm.key_len()
    }

    fn extract_keys(
        &self,
        key: AeadKey,
        iv: Iv,
    ) -> Result<ConnectionTrafficSecrets, UnsupportedOperationError> {
        Ok((self.secrets)(key, iv))
    }
}

/// A traffic key and IV as the handshake derived them (`AeadKey` zeroes
/// its bytes when dropped).
struct RawKey {
    algorithm: &'static aead::Algorithm,
    key: AeadKey,
    iv: Iv,
}

impl RawKey {
    /// ring's key, expanded for one record.
    fn expand(&self) -> Result<aead::LessSafeKey, Error> {
        // Fails only for a key of the wrong length, which rustls never
        // passes (it asks `key_len`); an error, not a panic, all the same.
        aead::UnboundKey::new(self.algorithm, self.key.as_ref())
            .map(aead::LessSafeKey::new)
            .map_err(|_| Error::General("a TLS traffic key of the wrong length".into()))
    }

    /// The nonce of record `seq`: the IV XORed with the sequence number.
    fn nonce(&self, seq: u64) -> aead::Nonce {
        aead::Nonce::assume_unique_for_key(Nonce::new(&self.iv, seq).0)
    }
}

struct RawKeyEncrypter {
    key: RawKey,
}

impl MessageEncrypter for RawKeyEncrypter {
    fn encrypt(
        &mut self,
        msg: OutboundPlainMessage<'_>,
        seq: u64,
    ) -> Result<OutboundOpaqueMessage, Error> {
        let total_len = self.encrypted_payload_len(msg.payload.len());
        let mut payload = PrefixedPayload::with_capacity(total_len);
        payload.extend_from_chunks(&msg.payload);
        // TLSInnerPlaintext: the content, then its real type, no padding.
        payload.extend_from_slice(&[u8::from(msg.typ)]);
        let aad = aead::Aad::from(make_tls13_aad(total_len));
        self.key
            .expand()?
            .seal_in_place_append_tag(self.key.nonce(seq), aad, &mut payload)
            .map_err(|_| Error::EncryptError)?;
        // Every TLS 1.3 record says application data, version 1.2 (RFC
        // 8446, section 5.2).
        Ok(OutboundOpaqueMessage::new(
            ContentType::ApplicationData,
            ProtocolVersion::TLSv1_2,
            payload,
        ))
    }

    fn encrypted_payload_len(&self, payload_len: usize) -> usize {
        payload_len + 1 + self.key.algorithm.tag_len()
    }
}

struct RawKeyDecrypter {
    key: RawKey,
}

impl MessageDecrypter for RawKeyDecrypter {
    fn decrypt<'a>(
        &mut self,
        mut msg: InboundOpaqueMessage<'a>,
        seq: u64,
    ) -> Result<InboundPlainMessage<'a>, Error> {
        let payload = &mut msg.payload;
        if payload.len() < self.key.algorithm.tag_len() {
            return Err(Error::DecryptError);
        }
        let aad = aead::Aad::from(make_tls13_aad(payload.len()));
        let plain_len = self
            .key
            .expand()?
            .open_in_place(self.key.nonce(seq), aad, payload)
            .map_err(|_| Error::DecryptError)?
            .len();
        payload.truncate(plain_len);
        msg.into_tls13_unpadded_message()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::Arc;

    use rustls::{ClientConnection, ServerConnection};

    use super::*;
    use crate::server::TlsConfig;

    /// A client with rustls's own ring provider, offering only `suite`,
    /// and the hub's server, in memory.
    fn pair(suite: SupportedCipherSuite) -> (ClientConnection, ServerConnection) {
        let tls = TlsConfig::self_signed(&["localhost".into()]).unwrap();
        // The hub's own configuration, which protects records with [`provider`].
        let server_config = tls.rustls_config().unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(tls.certificates()[0].clone()).unwrap();
        let client_provider = CryptoProvider {
            cipher_suites: vec![suite],
            ..rustls::crypto::ring::default_provider()
        };
        let client_config = rustls::ClientConfig::builder_with_provider(Arc::new(client_provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let client = ClientConnection::new(Arc::new(client_config), name).unwrap();
        let server = ServerConnection::new(server_config).unwrap();
        (client, server)
    }

    /// Moves every pending record from `from` to `to`, has `to` process
    /// them, and returns the application data they carried.
    fn transfer(
        from: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl Sized>>,
        to: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl Sized>>,
    ) -> Result<Vec<u8>, Error> {
        let mut wire = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut wire).unwrap();
        }
        let mut rest = &wire[..];
        let mut plaintext = Vec::new();
        while !rest.is_empty() {
            to.read_tls(&mut rest).unwrap();
            to.process_new_packets()?;
            // Read as it comes: rustls holds at most 16 KiB unread.
            match to.reader().read_to_end(&mut plaintext) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                other => panic!("the connection ended: {other:?}"),
            }
        }
        Ok(plaintext)
    }

    fn handshake(client: &mut ClientConnection, server: &mut ServerConnection) {
        while client.is_handshaking() || server.is_handshaking() {
            transfer(client, server).unwrap();
            transfer(server, client).unwrap();
        }
    }

    #[test]
    fn records_cross_both_ways_with_rustls_ring_provider_in_every_tls13_suite() {
        let suites = [
            rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
            rustls::crypto::ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
            rustls::crypto::ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        ];
        for suite in suites {
            let (mut client, mut server) = pair(suite);
            handshake(&mut client, &mut server);
            assert_eq!(
                server.negotiated_cipher_suite().map(|s| s.suite()),
                Some(suite.suite())
            );
            // Several records each way (a 40 KiB message takes three), so
            // every nonce after the first is used too.
            for round in 0..4u8 {
                let small = [b'a' + round; 100];
                let large: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8 ^ round).collect();
                server.writer().write_all(&small).unwrap();
                server.writer().write_all(&large).unwrap();
                let got = transfer(&mut server, &mut client).unwrap();
                assert_eq!(got, [&small[..], &large].concat());

                client.writer().write_all(&large).unwrap();
                assert_eq!(transfer(&mut client, &mut server).unwrap(), large);
            }
        }
    }

    #[test]
    fn a_record_altered_on_the_way_is_refused() {
        let (mut client, mut server) =
            pair(rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256);
        handshake(&mut client, &mut server);
        client
            .writer()
            .write_all(b"GET / HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut wire = Vec::new();
        client.write_tls(&mut wire).unwrap();
        // A ciphertext byte, past the 5-byte record header.
        wire[10] ^= 1;
        server.read_tls(&mut &wire[..]).unwrap();
        assert!(matches!(
            server.process_new_packets(),
            Err(Error::DecryptError)
        ));
    }

    #[test]
    fn a_connection_keys_cost_a_few_bytes_each() {
        // The point of this module: what rustls's ring provider boxes is
        // ring's expanded key, over 500 bytes per direction.
        assert!(std::mem::size_of::<RawKeyEncrypter>() <= 64);
        assert!(std::mem::size_of::<RawKeyDecrypter>() <= 64);
        assert!(std::mem::size_of::<aead::LessSafeKey>() > 500);
    }

    #[test]
    fn every_tls13_suite_of_ring_is_replaced_and_tls12_ones_are_kept() {
        let ring = rustls::crypto::ring::default_provider();
        let ours = provider();
        let names = |p: &CryptoProvider| {
            p.cipher_suites
                .iter()
                .map(|s| s.suite())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&ours), names(&ring));
        for suite in &ours.cipher_suites {
            if let SupportedCipherSuite::Tls13(tls13) = suite {
                let raw = RAW_KEY_AEADS
                    .iter()
                    .any(|a| std::ptr::addr_eq(tls13.aead_alg as *const dyn Tls13AeadAlgorithm, a));
                assert!(raw, "{:?} still uses ring's expanded keys", suite.suite());
            }
        }
    }
}
