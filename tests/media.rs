//! Media encryption: known-answer vectors, agreement of the four APIs, chunking,
//! tampering and the "no unverified output" guarantees. Interop with npm `baileys`
//! lives in `tests/media_interop/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{self, Read, Write};
use std::path::PathBuf;

use confide::media::{
    self, DecryptedMedia, Decryptor, Encryptor, Expected, MAC_LEN, MediaDecryptError,
    MediaEncryptError, MediaKey, MediaKind, StreamOptions,
};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn random_bytes(rng: &mut ChaCha20Rng, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

fn kat_key() -> MediaKey {
    MediaKey::from_bytes(std::array::from_fn(|i| i as u8))
}

const KAT_PLAINTEXT: &[u8] = b"confide media known-answer vector: 46 bytes!!";
const KAT_FILE_SHA256: &str = "324eefa5c37b233be7f00d53b66fc5a085328e6e094a33b6d55f852a0628db1a";

struct Kat {
    kind: MediaKind,
    expanded: &'static str,
    upload: &'static str,
    file_enc_sha256: &'static str,
}

/// Media key 00 01 .. 1f, plaintext [`KAT_PLAINTEXT`]. Computed independently with
/// Node.js's built-in `crypto` (hkdfSync with 32 zero bytes of salt, aes-256-cbc,
/// HMAC-SHA256 truncated to 10 bytes), not with confide.
const KATS: &[Kat] = &[
    Kat {
        kind: MediaKind::Image,
        expanded: "aa6a127218397cbd2383e4ccf7176a79008c9aea9b7c5d81eb56b3f530f87d42dcc92d27b11ad6b5bd66f0560d0d8c4691d09ffec108833c1699574c52657923fb6e3e161d9698bc6b3a05fbc508a5154d4981725e9eb39838fcff2130508f1360cbb319f99cef163d57ab7c050a667e",
        upload: "50bb7db391ab18e8a905d9b6390e6783510fc37264681446f063956fc8e63ef874da9b183b3daff9fb598992668f17ebf170cf6a4c48b61ed84d",
        file_enc_sha256: "cee106aad91bf8f31e6a8bf8649673029108469d38a96c94a3b971b019c25b40",
    },
    Kat {
        kind: MediaKind::Video,
        expanded: "f1dee5782cc4e2e7b07233b1e25de59b8564567ee06fa7006edab56a13c2b0a1431beb8efe698efad0f258e65feb5395259ad46118adcf3cd134ae881831c6865db31a8fa0bbce7bc3bcb9fcf369fcda9a63d5eb49eb03827d842400a27dbfb62efc9ebeb6f62b45df4575de4a871856",
        upload: "31ef06592d9f81d43a96520ab4b617e726ecd91971822800ba35a7f1ebd24617e613f01e69445ea74873b826f7291e5bc34c9461122d3e805870",
        file_enc_sha256: "b9e066e3ca8a3716aa5624b0ff59a67d8d5f9c078d718ba9d546828320a603a8",
    },
    Kat {
        kind: MediaKind::Audio,
        expanded: "13f8935709c20e2e8b0680f81b0dd5fba61016c0347747b75bb8a8f6d7bcdb863ac5eb702662755054fe77db27b7c1c09ec93580944b6656b0babacf55026028ff6c68bb134a4fd082c12b5463a3bb79bc7558b5a1ef874ee6a5155a282db3560dc25fcf6b910762a2d75fcbe6b13749",
        upload: "a18cfc01275a6cba66db60a676caf48f10aff1be05bc8a9ce3348d167ab8556845963f238b7864462f72f64391a0d506d8e8964da9e6e01e6c57",
        file_enc_sha256: "c727c4e9aa3c2a6f35f4ae62b956558d3bd6ad112d35c1c497308678352bd928",
    },
    Kat {
        kind: MediaKind::Document,
        expanded: "25e9d370804de0bb33ea5db79453db66b75c2bed8e162ad63dd02b6b9fbda46b8ad2692e99ed0f877d0ab48a86fff79094a393dafdca1265c99e197425de98f15f7d87d34714ea901f7eefc29c99e5acf826177ac4aaf590f67e927133b8a7f102a9fa5c2a88d62587699f581b2e9b76",
        upload: "20437bb1d900fa6bd10d20d026e2d21f1272fecce00def4da284ae43dd8c42ad0c132b55ffb520f117721fd83ce4a884f53131e87634610eafd3",
        file_enc_sha256: "152cce18a3e5dadfe8c48f59b71ed516d46cfcbc58d0f5712512f0180d5a6861",
    },
    Kat {
        kind: MediaKind::Sticker,
        expanded: "aa6a127218397cbd2383e4ccf7176a79008c9aea9b7c5d81eb56b3f530f87d42dcc92d27b11ad6b5bd66f0560d0d8c4691d09ffec108833c1699574c52657923fb6e3e161d9698bc6b3a05fbc508a5154d4981725e9eb39838fcff2130508f1360cbb319f99cef163d57ab7c050a667e",
        upload: "50bb7db391ab18e8a905d9b6390e6783510fc37264681446f063956fc8e63ef874da9b183b3daff9fb598992668f17ebf170cf6a4c48b61ed84d",
        file_enc_sha256: "cee106aad91bf8f31e6a8bf8649673029108469d38a96c94a3b971b019c25b40",
    },
    Kat {
        kind: MediaKind::History,
        expanded: "1bbd91064f1502e1ad57057640fd66a29dc9501b504a210bf20cf49eaa9d76f4ae29094d358c7178de23d4c4702a1eef9e46652edeb6d05209b09762f8ad479d416bd00e4998e65be81ecc5580861b2fc895440e4abc770a15ba3e77ffb36d7f65b2f1afec8c51a8e2b9baa511e6a99a",
        upload: "d4b09fd35daea4dfde0b6c6e3ffc28accc7ddfd2165c11fa52c8c8e8f98fbdb859dd8d08d5d2ab48f4bc824a1398725e8e25c7d3fb5507ff3b78",
        file_enc_sha256: "d9baf8ee7ef0144116874967ab735c1989af67f7c5faf4edd269dfd350b2e436",
    },
    Kat {
        kind: MediaKind::AppState,
        expanded: "c9c77ad8c829a4b405fdd16b4bcbd36bd7570410fb6eb14c54a665d7cab9e9329e6b116e21197ce60e20d106b2a1ce14d7e9c1661294927c19e760e82c4ab1702e01dcff5d2b7a8a7c94899efb3e47cd091299974b1d3951af08f460cae2db1b7f90f87fcbc7c047264c20e05bca06d7",
        upload: "a3605d152b830a03068140908909bf36c5cb3ae7963d9f7c954cfa88616e74579a10809d5c4e649b05047c1ff2982f258ba5489f4ad6624d2e6e",
        file_enc_sha256: "3793c4870120a52f4a6fade067af0e96ec88edc2fe6cc04a85164cbc218feacc",
    },
    Kat {
        kind: MediaKind::LinkThumbnail,
        expanded: "760c15df75946aad364036ed626ebaf8ae1678eb1ac461a13cd5f3f63a841f92e88052b4307683e49bcfdd6262a333b1fe127195f24f776f878e77e9d781ce237265353c8d2cd37b0a4f67dcdd3f039f10af3f1cae7c5cc0871c60062bf10a73a6966e604610d381a226ec7aaa94f85d",
        upload: "9606f5d3a8df050c2677bf7248938bead07b5bf2764e1c8db3be569189d46871470465c326dcfbbbaa6ca7449c9bb2cbee29da35cae59c875ac1",
        file_enc_sha256: "fc0baaf69c18783c019d7b1fdfa55d81c450785ac6fce2ab9190ec560e27df4d",
    },
    Kat {
        kind: MediaKind::StickerPack,
        expanded: "a072467b14dfc2656b07a90a93b3016662bceb3e0caf6287f0116a98ecf941373e609fa88cb02a12ad0fd1f4148f7f1e7e2d2176345ad047cab12dee0328194a79334f58e8465803af7aee48581fdbb20a91534618b476399196dcd760a5e31915869d41f658371f04c915c32c4be734",
        upload: "01b0dc1395098004d0f80f712b92821875c44422913294d9e1edbecd5b923fce34ac4fe5004621d733949f8b7caa3c1a3792bd6af2fc0a872c6a",
        file_enc_sha256: "484c0449973dfbd6ebfbf3dd3ade449362c2db775032e5fbfd37aee29b06db84",
    },
];

#[test]
fn known_answer_vectors_for_every_kind() {
    let key = kat_key();
    assert_eq!(KATS.len(), MediaKind::ALL.len());
    for kat in KATS {
        let x = key.expand(kat.kind);
        let expanded = [&x.iv()[..], x.cipher_key(), x.mac_key(), x.ref_key()].concat();
        assert_eq!(hex::encode(expanded), kat.expanded, "{}", kat.kind);
        let (upload, info) = media::encrypt_bytes(&key, kat.kind, KAT_PLAINTEXT);
        assert_eq!(hex::encode(&upload), kat.upload, "{}", kat.kind);
        assert_eq!(hex::encode(info.file_enc_sha256), kat.file_enc_sha256);
        assert_eq!(hex::encode(info.file_sha256), KAT_FILE_SHA256);
        assert_eq!(info.file_length, KAT_PLAINTEXT.len() as u64);
        assert_eq!(&info.mac[..], &upload[upload.len() - MAC_LEN..]);
        let (plain, got) =
            media::decrypt_bytes(&key, kat.kind, &upload, Expected::from(&info)).unwrap();
        assert_eq!(plain, KAT_PLAINTEXT);
        assert_eq!(got.file_sha256, Some(info.file_sha256));
    }
}

#[test]
fn kinds_names_aliases_and_info_strings() {
    for kind in MediaKind::ALL {
        assert_eq!(kind.name().parse::<MediaKind>().unwrap(), kind);
        assert_eq!(kind.to_string(), kind.name());
        assert!(kind.info().starts_with("WhatsApp ") && kind.info().ends_with(" Keys"));
    }
    assert_eq!("gif".parse::<MediaKind>().unwrap(), MediaKind::Video);
    assert_eq!("ptv".parse::<MediaKind>().unwrap(), MediaKind::Video);
    assert_eq!("ptt".parse::<MediaKind>().unwrap(), MediaKind::Audio);
    assert_eq!(MediaKind::Sticker.info(), MediaKind::Image.info());
    assert_eq!(MediaKind::AppState.info(), "WhatsApp App State Keys");
    assert_eq!(MediaKind::StickerPack.info(), "WhatsApp Sticker Pack Keys");
    assert_eq!(
        MediaKind::LinkThumbnail.info(),
        "WhatsApp Link Thumbnail Keys"
    );
    assert_eq!(MediaKind::History.info(), "WhatsApp History Keys");
    assert!("Image".parse::<MediaKind>().is_err());
    assert!("".parse::<MediaKind>().is_err());
}

#[test]
fn keys_never_print_and_parse_strictly() {
    let key = kat_key();
    assert_eq!(format!("{key:?}"), "MediaKey(***)");
    assert_eq!(
        format!("{:?}", key.expand(MediaKind::Image)),
        "ExpandedMediaKey(***)"
    );
    assert_eq!(MediaKey::try_from(&key.as_bytes()[..]).unwrap(), key);
    assert_eq!(
        MediaKey::try_from(&[0u8; 31][..]).unwrap_err(),
        media::MediaKeyError::WrongLength {
            expected: 32,
            found: 31
        }
    );
    let mut r = rng(1);
    assert_ne!(MediaKey::generate(&mut r), MediaKey::generate(&mut r));
    let enc = Encryptor::new(&key, MediaKind::Image);
    assert_eq!(format!("{enc:?}"), "Encryptor { length: 0, .. }");
}

/// Sizes around every boundary the implementations have: blocks, the 26-byte trailer,
/// the 4 KiB test chunk and the 64-byte carry.
fn edge_sizes() -> Vec<usize> {
    let mut v: Vec<usize> = (0..=80).collect();
    for base in [4096usize, 8192, 3 * 4096] {
        for d in 0..=42 {
            v.push(base - d);
            v.push(base + d);
        }
    }
    v.sort_unstable();
    v.dedup();
    v
}

fn push_encrypt(
    key: &MediaKey,
    kind: MediaKind,
    data: &[u8],
    cuts: &[usize],
) -> (Vec<u8>, media::EncryptedMedia) {
    let mut enc = Encryptor::new(key, kind);
    let mut out = Vec::new();
    let mut at = 0;
    for &c in cuts {
        let c = c.min(data.len() - at);
        out.extend_from_slice(&enc.update(&data[at..at + c]));
        at += c;
    }
    out.extend_from_slice(&enc.update(&data[at..]));
    let (end, info) = enc.finish();
    out.extend_from_slice(&end);
    (out, info)
}

fn push_decrypt(
    key: &MediaKey,
    kind: MediaKind,
    upload: &[u8],
    cuts: &[usize],
    expected: Expected,
) -> Result<(Vec<u8>, DecryptedMedia), MediaDecryptError> {
    let mut dec = Decryptor::new(key, kind, expected);
    let mut out = Vec::new();
    let mut at = 0;
    for &c in cuts {
        let c = c.min(upload.len() - at);
        dec.update_into(&upload[at..at + c], &mut out);
        at += c;
    }
    dec.update_into(&upload[at..], &mut out);
    let (end, info) = dec.finish()?;
    out.extend_from_slice(&end);
    Ok((out, info))
}

fn small_chunks() -> StreamOptions {
    StreamOptions::new().with_chunk_len(4096)
}

#[test]
fn all_apis_agree_at_every_edge_size() {
    let mut r = rng(2);
    let key = MediaKey::generate(&mut r);
    for (i, len) in edge_sizes().into_iter().enumerate() {
        let kind = MediaKind::ALL[i % MediaKind::ALL.len()];
        let data = random_bytes(&mut r, len);
        let (upload, info) = media::encrypt_bytes(&key, kind, &data);
        assert_eq!(upload.len() as u64, media::encrypted_len(len as u64));
        let cuts: Vec<usize> = (0..5).map(|_| (r.next_u32() % 50) as usize).collect();
        assert_eq!(
            push_encrypt(&key, kind, &data, &cuts),
            (upload.clone(), info),
            "push, {len}"
        );
        for opts in [small_chunks(), small_chunks().with_helper_thread(false)] {
            let mut out = Vec::new();
            let got = media::encrypt_stream(&key, kind, &data[..], &mut out, opts).unwrap();
            assert_eq!((&out, got), (&upload, info), "stream {opts:?}, {len}");

            let mut plain = Vec::new();
            let expected = Expected::from(&info);
            let got =
                media::decrypt_stream(&key, kind, &upload[..], &mut plain, expected, opts).unwrap();
            assert_eq!(plain, data, "decrypt_stream {opts:?}, {len}");
            assert_eq!(got.file_sha256, Some(info.file_sha256));
            assert_eq!(got.file_enc_sha256, Some(info.file_enc_sha256));
        }
        let (plain, got) = push_decrypt(&key, kind, &upload, &cuts, Expected::from(&info)).unwrap();
        assert_eq!(plain, data, "push decrypt, {len}");
        assert_eq!(got.file_length, len as u64);
        let (plain, _) = media::decrypt_bytes(&key, kind, &upload, Expected::none()).unwrap();
        assert_eq!(plain, data);
        assert_eq!(
            media::verify(&key, kind, &upload[..], Some(info.file_enc_sha256)).unwrap(),
            info.file_enc_sha256
        );
    }
}

/// The helper thread joins after the first full chunk and must see every chunk, in
/// order, however the two threads interleave.
#[test]
fn helper_thread_handoffs_under_repetition() {
    let mut r = rng(9);
    let key = MediaKey::generate(&mut r);
    let opts = small_chunks();
    for round in 0..300usize {
        let len = 4096 * (1 + round % 4) + [0usize, 1, 15, 16, 26, 4000][round % 6];
        let data = random_bytes(&mut r, len);
        let (upload, info) = media::encrypt_bytes(&key, MediaKind::Image, &data);
        let mut out = Vec::new();
        let got = media::encrypt_stream(&key, MediaKind::Image, &data[..], &mut out, opts).unwrap();
        assert_eq!(got, info, "round {round}");
        assert!(out == upload, "round {round}");
        let mut plain = Vec::new();
        let got = media::decrypt_stream(
            &key,
            MediaKind::Image,
            &upload[..],
            &mut plain,
            Expected::from(&info),
            opts,
        )
        .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        assert_eq!(got.file_sha256, Some(info.file_sha256));
        assert!(plain == data, "round {round}");
    }
}

#[test]
fn a_mebibyte_through_default_options_both_ways() {
    let mut r = rng(3);
    let key = MediaKey::generate(&mut r);
    let data = random_bytes(&mut r, (1 << 20) + 13);
    let (upload, info) = media::encrypt_bytes(&key, MediaKind::Video, &data);
    for opts in [StreamOptions::new(), StreamOptions::single_threaded()] {
        let mut out = Vec::new();
        let got = media::encrypt_stream(&key, MediaKind::Video, &data[..], &mut out, opts).unwrap();
        assert_eq!(got, info);
        assert!(out == upload);
        let mut plain = Vec::new();
        media::decrypt_stream(
            &key,
            MediaKind::Video,
            &upload[..],
            &mut plain,
            Expected::from(&info),
            opts,
        )
        .unwrap();
        assert!(plain == data);
    }
    assert_eq!(
        media::verify(
            &key,
            MediaKind::Video,
            &upload[..],
            Some(info.file_enc_sha256)
        )
        .unwrap(),
        info.file_enc_sha256
    );
    for at in [100, (1 << 18) + 7, upload.len() - 11, upload.len() - 1] {
        let mut bad = upload.clone();
        bad[at] ^= 0x40;
        assert!(
            matches!(
                media::verify(&key, MediaKind::Video, &bad[..], None),
                Err(MediaDecryptError::BadMac)
            ),
            "flip at {at}"
        );
    }
}

/// `verify` reads 256 KiB + 64 bytes at a time and holds back the last 26 of each read:
/// uploads that end just before, at and just after a read's end, one and two reads in.
#[test]
fn verify_across_its_read_boundaries() {
    let mut r = rng(4);
    let key = MediaKey::generate(&mut r);
    let read = (256 << 10) + 64;
    for reads in [1usize, 2] {
        // Uploads are 16n + 10 bytes: these plaintexts give every such length from 50
        // below the boundary to 30 above it.
        let boundary = reads * read - (reads - 1) * 26;
        for plain_len in (boundary - 60)..(boundary + 30) {
            let data = random_bytes(&mut r, plain_len);
            let (upload, info) = media::encrypt_bytes(&key, MediaKind::Document, &data);
            let got = media::verify(&key, MediaKind::Document, &upload[..], None);
            assert_eq!(
                got.unwrap(),
                info.file_enc_sha256,
                "upload of {}",
                upload.len()
            );
        }
    }
}

/// A reader that hands out at most `step` bytes per call and interrupts every other call.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
    flip: bool,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.flip = !self.flip;
        if self.flip {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn short_and_interrupted_reads() {
    let mut r = rng(4);
    let key = MediaKey::generate(&mut r);
    let data = random_bytes(&mut r, 10_000);
    let (upload, info) = media::encrypt_bytes(&key, MediaKind::Audio, &data);
    let reader = Trickle {
        data: &data,
        step: 777,
        flip: false,
    };
    let mut out = Vec::new();
    assert_eq!(
        media::encrypt_stream(&key, MediaKind::Audio, reader, &mut out, small_chunks()).unwrap(),
        info
    );
    assert_eq!(out, upload);
    let reader = Trickle {
        data: &upload,
        step: 5,
        flip: false,
    };
    let mut plain = Vec::new();
    media::decrypt_stream(
        &key,
        MediaKind::Audio,
        reader,
        &mut plain,
        Expected::from(&info),
        small_chunks(),
    )
    .unwrap();
    assert_eq!(plain, data);
}

struct Broken;

impl Read for Broken {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::other("disk gone"))
    }
}

impl Write for Broken {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::other("disk full"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn io_errors_are_typed() {
    let key = kat_key();
    for opts in [StreamOptions::new(), StreamOptions::single_threaded()] {
        let e =
            media::encrypt_stream(&key, MediaKind::Image, Broken, Vec::new(), opts).unwrap_err();
        assert!(matches!(e, MediaEncryptError::Read { .. }), "{e:?}");
        let e = media::encrypt_stream(&key, MediaKind::Image, &[1u8; 100][..], Broken, opts)
            .unwrap_err();
        assert!(matches!(e, MediaEncryptError::Write { .. }), "{e:?}");
        let e = media::decrypt_stream(
            &key,
            MediaKind::Image,
            Broken,
            Vec::new(),
            Expected::none(),
            opts,
        )
        .unwrap_err();
        assert!(matches!(e, MediaDecryptError::Read { .. }), "{e:?}");
        let (upload, _) = media::encrypt_bytes(&key, MediaKind::Image, &[7u8; 100]);
        let e = media::decrypt_stream(
            &key,
            MediaKind::Image,
            &upload[..],
            Broken,
            Expected::none(),
            opts,
        )
        .unwrap_err();
        assert!(matches!(e, MediaDecryptError::Write { .. }), "{e:?}");
    }
    // Display text names no content.
    let e = MediaDecryptError::BadMac;
    assert_eq!(e.to_string(), "encrypted media MAC mismatch");
}

/// Every way of decrypting, reporting the error (if any).
fn all_decrypts(
    key: &MediaKey,
    kind: MediaKind,
    upload: &[u8],
    expected: Expected,
) -> Vec<Result<Vec<u8>, MediaDecryptError>> {
    let mut results = vec![
        media::decrypt_bytes(key, kind, upload, expected).map(|r| r.0),
        push_decrypt(key, kind, upload, &[3, 100, 17], expected).map(|r| r.0),
    ];
    for opts in [small_chunks(), small_chunks().with_helper_thread(false)] {
        let mut out = Vec::new();
        results
            .push(media::decrypt_stream(key, kind, upload, &mut out, expected, opts).map(|_| out));
    }
    results
}

fn assert_all_fail(
    key: &MediaKey,
    kind: MediaKind,
    upload: &[u8],
    expected: Expected,
    want: fn(&MediaDecryptError) -> bool,
    what: &str,
) {
    for (i, r) in all_decrypts(key, kind, upload, expected)
        .into_iter()
        .enumerate()
    {
        match r {
            Ok(_) => panic!("{what}: decrypt #{i} accepted"),
            Err(e) => assert!(want(&e), "{what}: decrypt #{i} gave {e:?}"),
        }
    }
}

#[test]
fn tampering_wrong_keys_and_wrong_kinds_fail_the_mac() {
    let mut r = rng(5);
    let key = MediaKey::generate(&mut r);
    for len in [0usize, 1, 16, 100, 4096, 9000] {
        let data = random_bytes(&mut r, len);
        let (upload, info) = media::encrypt_bytes(&key, MediaKind::Document, &data);
        let bad_mac = |e: &MediaDecryptError| matches!(e, MediaDecryptError::BadMac);
        for pos in [
            0,
            upload.len() / 2,
            upload.len() - MAC_LEN - 1,
            upload.len() - MAC_LEN,
            upload.len() - 1,
        ] {
            let mut t = upload.clone();
            t[pos] ^= 0x01;
            assert_all_fail(
                &key,
                MediaKind::Document,
                &t,
                Expected::none(),
                bad_mac,
                &format!("flip {pos} of {len}"),
            );
        }
        assert_all_fail(
            &key,
            MediaKind::Image,
            &upload,
            Expected::none(),
            bad_mac,
            "wrong kind",
        );
        assert_all_fail(
            &MediaKey::generate(&mut r),
            MediaKind::Document,
            &upload,
            Expected::none(),
            bad_mac,
            "wrong key",
        );
        // Dropping or adding whole blocks keeps the shape but breaks the MAC.
        let mut longer = upload[..upload.len() - MAC_LEN].to_vec();
        longer.extend_from_slice(&[0u8; 16]);
        longer.extend_from_slice(&info.mac);
        assert_all_fail(
            &key,
            MediaKind::Document,
            &longer,
            Expected::none(),
            bad_mac,
            "extra block",
        );
        if len >= 16 {
            let mut shorter = upload[16..].to_vec();
            shorter.truncate(shorter.len());
            assert_all_fail(
                &key,
                MediaKind::Document,
                &shorter,
                Expected::none(),
                bad_mac,
                "dropped block",
            );
        }
    }
}

#[test]
fn malformed_shapes() {
    let key = kat_key();
    for len in [0usize, 1, 10, 25] {
        let up = vec![0u8; len];
        assert_all_fail(
            &key,
            MediaKind::Image,
            &up,
            Expected::none(),
            |e| matches!(e, MediaDecryptError::TooShort { minimum: 26, .. }),
            &format!("len {len}"),
        );
    }
    for len in [27usize, 41, 43, 4096 + 10 + 1] {
        let up = vec![0u8; len];
        assert_all_fail(
            &key,
            MediaKind::Image,
            &up,
            Expected::none(),
            |e| matches!(e, MediaDecryptError::NotBlockAligned { .. }),
            &format!("len {len}"),
        );
    }
    let e = media::decrypt_bytes(&key, MediaKind::Image, &[0u8; 27], Expected::none()).unwrap_err();
    assert!(
        matches!(e, MediaDecryptError::NotBlockAligned { ciphertext_len: 17 }),
        "{e:?}"
    );
}

#[test]
fn expected_hashes_and_length_are_enforced() {
    let mut r = rng(6);
    let key = MediaKey::generate(&mut r);
    let data = random_bytes(&mut r, 5000);
    let (upload, info) = media::encrypt_bytes(&key, MediaKind::Sticker, &data);
    let mut wrong = info.file_enc_sha256;
    wrong[0] ^= 1;
    assert_all_fail(
        &key,
        MediaKind::Sticker,
        &upload,
        Expected::none().file_enc_sha256(wrong),
        |e| matches!(e, MediaDecryptError::EncSha256Mismatch),
        "enc sha",
    );
    let mut wrong = info.file_sha256;
    wrong[31] ^= 1;
    assert_all_fail(
        &key,
        MediaKind::Sticker,
        &upload,
        Expected::none().file_sha256(wrong),
        |e| matches!(e, MediaDecryptError::FileSha256Mismatch),
        "file sha",
    );
    assert_all_fail(
        &key,
        MediaKind::Sticker,
        &upload,
        Expected::none().file_length(4999),
        |e| {
            matches!(
                e,
                MediaDecryptError::LengthMismatch {
                    expected: 4999,
                    found: 5000
                }
            )
        },
        "length",
    );
    // Each hash is computed only when asked for.
    let (_, got) =
        media::decrypt_bytes(&key, MediaKind::Sticker, &upload, Expected::none()).unwrap();
    assert_eq!(got.file_sha256, None);
    assert_eq!(got.file_enc_sha256, None);
    let only_enc = Expected::none().file_enc_sha256(info.file_enc_sha256);
    let (_, got) = media::decrypt_bytes(&key, MediaKind::Sticker, &upload, only_enc).unwrap();
    assert_eq!(
        (got.file_enc_sha256, got.file_sha256),
        (Some(info.file_enc_sha256), None)
    );
    // Over several chunks, with and without a helper thread allowed (it has nothing to
    // hash, so none starts), and with the upload hash asked for.
    for opts in [small_chunks(), small_chunks().with_helper_thread(false)] {
        let mut plain = Vec::new();
        let got = media::decrypt_stream(
            &key,
            MediaKind::Sticker,
            &upload[..],
            &mut plain,
            Expected::none(),
            opts,
        )
        .unwrap();
        assert_eq!((got.file_enc_sha256, got.file_sha256), (None, None));
        assert_eq!(got.file_length, plain.len() as u64);
        let got = media::decrypt_stream(
            &key,
            MediaKind::Sticker,
            &upload[..],
            io::sink(),
            only_enc,
            opts,
        )
        .unwrap();
        assert_eq!(
            (got.file_enc_sha256, got.file_sha256),
            (Some(info.file_enc_sha256), None)
        );
    }
    assert!(media::verify(&key, MediaKind::Sticker, &upload[..], Some(wrong)).is_err());
    let mut t = upload.clone();
    t[0] ^= 1;
    assert!(matches!(
        media::verify(&key, MediaKind::Sticker, &t[..], None),
        Err(MediaDecryptError::BadMac)
    ));
}

/// Builds an upload whose MAC is valid but whose padding is not, as a broken sender would.
fn authenticated_bad_padding(key: &MediaKey, kind: MediaKind, last_byte: u8) -> Vec<u8> {
    use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
    let x = key.expand(kind);
    let mut block = [0x41u8; 32];
    block[31] = last_byte;
    let ct = cbc::Encryptor::<aes::Aes256>::new(x.cipher_key().into(), x.iv().into())
        .encrypt_padded_vec_mut::<NoPadding>(&block);
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, x.mac_key());
    let tag = ring::hmac::sign(&k, &[&x.iv()[..], &ct].concat());
    [&ct[..], &tag.as_ref()[..MAC_LEN]].concat()
}

#[test]
fn bad_padding_is_reported_only_after_a_good_mac() {
    let key = kat_key();
    for last in [0u8, 17, 0xff, 3] {
        let up = authenticated_bad_padding(&key, MediaKind::Video, last);
        assert_all_fail(
            &key,
            MediaKind::Video,
            &up,
            Expected::none(),
            |e| matches!(e, MediaDecryptError::BadPadding),
            &format!("pad {last}"),
        );
        // The same bytes under another kind fail the MAC instead.
        assert_all_fail(
            &key,
            MediaKind::Audio,
            &up,
            Expected::none(),
            |e| matches!(e, MediaDecryptError::BadMac),
            "other kind",
        );
    }
}

#[test]
fn small_files_release_nothing_before_verification() {
    let mut r = rng(7);
    let key = MediaKey::generate(&mut r);
    let data = random_bytes(&mut r, 3000);
    let (mut upload, _) = media::encrypt_bytes(&key, MediaKind::Image, &data);
    let n = upload.len();
    upload[n - 1] ^= 1;
    for opts in [small_chunks(), small_chunks().with_helper_thread(false)] {
        let mut out = Vec::new();
        assert!(
            media::decrypt_stream(
                &key,
                MediaKind::Image,
                &upload[..],
                &mut out,
                Expected::none(),
                opts
            )
            .is_err()
        );
        assert!(out.is_empty(), "{} unverified bytes escaped", out.len());
    }
    // The push decryptor holds back the last block, which is released only by finish.
    let mut dec = Decryptor::new(&key, MediaKind::Image, Expected::none());
    let early = dec.update(&upload);
    assert_eq!(early.len(), 3000 / 16 * 16);
    assert!(dec.finish().is_err());
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("confide-media-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn files_are_published_only_when_verified() {
    let dir = TempDir::new("files");
    let mut r = rng(8);
    let key = MediaKey::generate(&mut r);
    let data = random_bytes(&mut r, 300_000);
    let plain = dir.0.join("plain.bin");
    let enc = dir.0.join("plain.bin.enc");
    let out = dir.0.join("out.bin");
    std::fs::write(&plain, &data).unwrap();
    let info = media::encrypt_file(
        &key,
        MediaKind::Document,
        &plain,
        &enc,
        StreamOptions::new(),
    )
    .unwrap();
    assert_eq!(
        std::fs::read(&enc).unwrap(),
        media::encrypt_bytes(&key, MediaKind::Document, &data).0
    );

    // A bad MAC: nothing at out_path, no temporary file left.
    let mut upload = std::fs::read(&enc).unwrap();
    let n = upload.len();
    upload[n - 3] ^= 0x80;
    let bad = dir.0.join("bad.enc");
    std::fs::write(&bad, &upload).unwrap();
    for opts in [
        StreamOptions::new(),
        small_chunks(),
        StreamOptions::single_threaded(),
    ] {
        let e = media::decrypt_file(
            &key,
            MediaKind::Document,
            &bad,
            &out,
            Expected::none(),
            opts,
        )
        .unwrap_err();
        assert!(matches!(e, MediaDecryptError::BadMac), "{e:?}");
        assert_eq!(dir.entries(), ["bad.enc", "plain.bin", "plain.bin.enc"]);
    }
    // A wrong expected hash fails the same way; a file already at out_path is untouched.
    std::fs::write(&out, b"older").unwrap();
    let e = media::decrypt_file(
        &key,
        MediaKind::Document,
        &enc,
        &out,
        Expected::none().file_sha256([0u8; 32]),
        StreamOptions::new(),
    )
    .unwrap_err();
    assert!(matches!(e, MediaDecryptError::FileSha256Mismatch), "{e:?}");
    assert_eq!(std::fs::read(&out).unwrap(), b"older");
    // Success replaces it.
    let got = media::decrypt_file(
        &key,
        MediaKind::Document,
        &enc,
        &out,
        Expected::from(&info),
        StreamOptions::new(),
    )
    .unwrap();
    assert_eq!(got.file_length, 300_000);
    assert!(std::fs::read(&out).unwrap() == data);
    assert_eq!(
        dir.entries(),
        ["bad.enc", "out.bin", "plain.bin", "plain.bin.enc"]
    );
    // A missing input is a read error and creates nothing.
    let e = media::decrypt_file(
        &key,
        MediaKind::Document,
        dir.0.join("nope"),
        dir.0.join("x"),
        Expected::none(),
        StreamOptions::new(),
    )
    .unwrap_err();
    assert!(matches!(e, MediaDecryptError::Read { .. }), "{e:?}");
    assert_eq!(dir.entries().len(), 4);
}

#[test]
fn stream_options_clamp() {
    assert_eq!(StreamOptions::new().chunk_len(), 256 * 1024);
    assert!(StreamOptions::new().helper_thread());
    assert!(!StreamOptions::single_threaded().helper_thread());
    assert_eq!(StreamOptions::new().with_chunk_len(1).chunk_len(), 4096);
    assert_eq!(StreamOptions::new().with_chunk_len(5000).chunk_len(), 4992);
    assert_eq!(
        StreamOptions::new().with_chunk_len(usize::MAX).chunk_len(),
        16 << 20
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any chunking of encryption and of decryption gives the in-memory result.
    #[test]
    fn any_chunking_round_trips(
        seed in any::<u64>(),
        len in 0usize..3000,
        enc_cuts in proptest::collection::vec(0usize..200, 0..12),
        dec_cuts in proptest::collection::vec(0usize..200, 0..12),
        kind_ix in 0usize..9,
    ) {
        let mut r = rng(seed);
        let key = MediaKey::generate(&mut r);
        let kind = MediaKind::ALL[kind_ix];
        let data = random_bytes(&mut r, len);
        let (upload, info) = media::encrypt_bytes(&key, kind, &data);
        prop_assert_eq!(push_encrypt(&key, kind, &data, &enc_cuts), (upload.clone(), info));
        let expected = Expected::from(&info);
        let (plain, got) = push_decrypt(&key, kind, &upload, &dec_cuts, expected).unwrap();
        prop_assert_eq!(plain, data);
        prop_assert_eq!(got.file_enc_sha256, Some(info.file_enc_sha256));
    }

    /// Any single-bit flip anywhere in the upload is caught by the MAC.
    #[test]
    fn any_bit_flip_is_rejected(seed in any::<u64>(), len in 0usize..500, bit in any::<usize>()) {
        let mut r = rng(seed);
        let key = MediaKey::generate(&mut r);
        let data = random_bytes(&mut r, len);
        let (mut upload, _) = media::encrypt_bytes(&key, MediaKind::History, &data);
        let bit = bit % (upload.len() * 8);
        upload[bit / 8] ^= 1 << (bit % 8);
        let e = push_decrypt(&key, MediaKind::History, &upload, &[7], Expected::none())
            .unwrap_err();
        prop_assert!(matches!(e, MediaDecryptError::BadMac), "{:?}", e);
    }
}
