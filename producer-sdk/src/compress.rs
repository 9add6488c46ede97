//! Body compression: bodies above a threshold are compressed with LZ4
//! (size-prepended block) when that makes them smaller, and flagged so
//! that consumers decompress them.

use bytes::Bytes;

/// Message flag bit: the body is LZ4-compressed.
pub use mq_common::message::FLAG_COMPRESSED;

/// The body to send and its flags.
pub fn maybe_compress(body: &Bytes, threshold: usize) -> (Bytes, u32) {
    if body.len() <= threshold {
        return (body.clone(), 0);
    }
    let compressed = mq_common::compression::compress(body);
    if compressed.len() < body.len() {
        (Bytes::from(compressed), FLAG_COMPRESSED)
    } else {
        (body.clone(), 0)
    }
}

/// The original body of a message sent with `flags`.
pub fn decompress(body: &[u8], flags: u32) -> Result<Bytes, String> {
    if flags & FLAG_COMPRESSED == 0 {
        return Ok(Bytes::copy_from_slice(body));
    }
    mq_common::compression::decompress(body).map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_compressible_bodies_shrink_and_come_back() {
        let body = Bytes::from(vec![b'a'; 10_000]);
        let (sent, flags) = maybe_compress(&body, 4096);
        assert_eq!(flags, FLAG_COMPRESSED);
        assert!(sent.len() < 1000);
        assert_eq!(decompress(&sent, flags).unwrap(), body);
    }

    #[test]
    fn small_or_incompressible_bodies_go_as_they_are() {
        let small = Bytes::from_static(b"hello");
        assert_eq!(maybe_compress(&small, 4096), (small.clone(), 0));
        // xorshift64: bytes LZ4 cannot shrink.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..8192)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let noise = Bytes::from(noise);
        assert_eq!(maybe_compress(&noise, 4096).1, 0);
        assert!(decompress(b"garbage", FLAG_COMPRESSED).is_err());
    }
}
