//! `Content-Encoding` of ingest bodies: Sentry's server-side SDKs send `gzip` or `deflate`.
//! Decompression stops one byte past the limit, so a decompression bomb costs at most the limit
//! in memory and is refused with `413`.

use std::io::Read;

use bytes::Bytes;

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodingError {
    /// An encoding other than identity, gzip or deflate.
    #[error("Content-Encoding {0:?} is not supported (identity, gzip or deflate)")]
    Unsupported(String),
    /// Larger than the limit once decompressed.
    #[error("the body is over the {0} byte limit once decompressed")]
    TooLarge(usize),
    /// Not valid gzip or deflate data.
    #[error("the body is not valid {0} data")]
    Corrupt(&'static str),
}

/// The body as sent, decompressed per `encoding` (at most `limit` bytes).
pub fn decode(encoding: Option<&str>, body: Bytes, limit: usize) -> Result<Bytes, EncodingError> {
    let encoding = encoding.map(|e| e.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("") | Some("identity") => Ok(body),
        Some("gzip") | Some("x-gzip") => {
            read_limited(flate2::read::MultiGzDecoder::new(&body[..]), limit, "gzip")
        }
        Some("deflate") => {
            // HTTP's deflate is zlib-wrapped; some clients send raw deflate.
            read_limited(flate2::read::ZlibDecoder::new(&body[..]), limit, "deflate").or_else(|e| {
                match e {
                    EncodingError::Corrupt(_) => read_limited(
                        flate2::read::DeflateDecoder::new(&body[..]),
                        limit,
                        "deflate",
                    ),
                    other => Err(other),
                }
            })
        }
        Some(other) => Err(EncodingError::Unsupported(other.chars().take(64).collect())),
    }
}

fn read_limited(
    reader: impl Read,
    limit: usize,
    what: &'static str,
) -> Result<Bytes, EncodingError> {
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| EncodingError::Corrupt(what))?;
    if out.len() > limit {
        return Err(EncodingError::TooLarge(limit));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Bytes {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        Bytes::from(e.finish().unwrap())
    }

    fn zlib(data: &[u8]) -> Bytes {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        Bytes::from(e.finish().unwrap())
    }

    fn raw_deflate(data: &[u8]) -> Bytes {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        Bytes::from(e.finish().unwrap())
    }

    #[test]
    fn gzip_and_both_deflates_decode() {
        let data = b"{}\n{\"type\":\"event\"}\n{\"message\":\"hi\"}\n";
        assert_eq!(decode(Some("gzip"), gzip(data), 1024).unwrap(), &data[..]);
        assert_eq!(decode(Some(" GZIP "), gzip(data), 1024).unwrap(), &data[..]);
        assert_eq!(
            decode(Some("deflate"), zlib(data), 1024).unwrap(),
            &data[..]
        );
        assert_eq!(
            decode(Some("deflate"), raw_deflate(data), 1024).unwrap(),
            &data[..]
        );
        assert_eq!(
            decode(None, Bytes::from_static(b"x"), 1).unwrap(),
            &b"x"[..]
        );
    }

    #[test]
    fn bombs_stop_at_the_limit_and_garbage_is_an_error() {
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 100_000, "{}", bomb.len());
        assert_eq!(
            decode(Some("gzip"), bomb, 1 << 20),
            Err(EncodingError::TooLarge(1 << 20))
        );
        assert_eq!(
            decode(Some("gzip"), Bytes::from_static(b"not gzip"), 1024),
            Err(EncodingError::Corrupt("gzip"))
        );
        assert!(matches!(
            decode(Some("br"), Bytes::new(), 1),
            Err(EncodingError::Unsupported(_))
        ));
    }
}
