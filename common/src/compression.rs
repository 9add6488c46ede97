//! Message bodies compressed with LZ4 (a block with its uncompressed size
//! prepended, little endian), flagged [`FLAG_COMPRESSED`]. Decompressing
//! trusts nothing: a body read from the network or a damaged disk may
//! claim any size, and LZ4 allocates what it claims, so a claim beyond what
//! the block could expand to (LZ4 expands at most 255 times) or beyond
//! [`MAX_BODY`] is refused before anything is allocated.
//!
//! [`FLAG_COMPRESSED`]: crate::message::FLAG_COMPRESSED

/// The largest body decompressed (the largest pull answer is 64 MiB).
pub const MAX_BODY: usize = 64 << 20;
/// LZ4 turns a byte of block into at most about 255 bytes of output.
const MAX_RATIO: usize = 255;

/// Compresses `body` with its size prepended.
pub fn compress(body: &[u8]) -> Vec<u8> {
    lz4_flex::compress_prepend_size(body)
}

/// The original of a compressed body; an error that says what is wrong
/// when it is damaged.
pub fn decompress(body: &[u8]) -> Result<Vec<u8>, String> {
    let Some((size, block)) = body.split_first_chunk::<4>() else {
        return Err(format!(
            "corrupt compressed body: {} bytes, shorter than its 4-byte size",
            body.len()
        ));
    };
    let size = u32::from_le_bytes(*size) as usize;
    let bound = block.len().saturating_mul(MAX_RATIO).min(MAX_BODY);
    if size > bound {
        return Err(format!(
            "corrupt compressed body: claims {size} bytes from a {}-byte block (at most {bound})",
            block.len()
        ));
    }
    lz4_flex::decompress(block, size).map_err(|e| format!("corrupt compressed body: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<u8> {
        (0..20_000u32)
            .flat_map(|i| format!("line {} of a compressible body\n", i % 97).into_bytes())
            .collect()
    }

    #[test]
    fn bodies_come_back_and_impossible_sizes_are_refused_before_allocating() {
        let body = sample();
        let compressed = compress(&body);
        assert!(compressed.len() < body.len() / 4);
        assert_eq!(decompress(&compressed).unwrap(), body);

        let mut claims_4_gib = compressed.clone();
        claims_4_gib[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = decompress(&claims_4_gib).unwrap_err();
        assert!(err.contains("claims 4294967295 bytes"), "{err}");
        assert!(decompress(&[1, 0]).unwrap_err().contains("shorter than"));
        assert_eq!(decompress(&compress(b"")).unwrap(), b"");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256)
        ))]

        /// Fuzzing (failures kept in `compression.proptest-regressions`):
        /// any bytes, and real bodies damaged, decompress or are refused,
        /// never panic, never past the bound.
        #[test]
        fn any_bytes_decompress_within_bounds_or_are_refused(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            if let Ok(out) = decompress(&bytes) {
                prop_assert!(out.len() <= (bytes.len().saturating_sub(4)) * MAX_RATIO);
            }
        }

        #[test]
        fn damaged_bodies_decompress_within_bounds_or_are_refused(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..8),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let mut bytes = compress(&sample()[..5000]);
            for (at, xor) in flips {
                let at = at.index(bytes.len());
                bytes[at] ^= xor;
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len()));
            }
            if let Ok(out) = decompress(&bytes) {
                prop_assert!(out.len() <= MAX_BODY);
            }
        }
    }
}
