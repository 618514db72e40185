//! The proxy-wasm header-map serialization (spec "Serialization"), used by
//! `proxy_get_header_map_pairs`, `proxy_set_header_map_pairs`,
//! `proxy_send_local_response`, `proxy_http_call` and map-typed properties
//! (`request.headers`): a u32 count, then count × (u32 key size, u32 value
//! size), then each key and each value followed by a NUL byte. Integers are
//! little-endian.

/// Serializes `pairs` in order.
pub fn serialize<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    let mut size = 4;
    for (k, v) in pairs {
        size += 8 + k.as_ref().len() + v.as_ref().len() + 2;
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.as_ref().len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.as_ref().len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

/// Parses a serialized map into its pairs, in order. `None` when `data` is
/// malformed (truncated, sizes past the end, a missing NUL). Empty `data`
/// is the empty map.
pub fn deserialize(data: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if data.is_empty() {
        return Some(Vec::new());
    }
    let u32_at = |i: usize| -> Option<usize> {
        let b = data.get(i..i.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let n = u32_at(0)?;
    let mut pos = n.checked_mul(8)?.checked_add(4)?;
    if pos > data.len() {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (kl, vl) = (u32_at(4 + 8 * i)?, u32_at(8 + 8 * i)?);
        let k = data.get(pos..pos.checked_add(kl)?)?;
        pos += kl;
        if data.get(pos) != Some(&0) {
            return None;
        }
        pos += 1;
        let v = data.get(pos..pos.checked_add(vl)?)?;
        pos += vl;
        if data.get(pos) != Some(&0) {
            return None;
        }
        pos += 1;
        out.push((k.to_vec(), v.to_vec()));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let pairs = [(":status", "401"), ("www-authenticate", "Bearer realm=\"api\""), ("x-empty", "")];
        let data = serialize(&pairs);
        assert_eq!(&data[..4], &3u32.to_le_bytes());
        let back = deserialize(&data).expect("parses");
        assert_eq!(back.len(), 3);
        for ((k, v), (bk, bv)) in pairs.iter().zip(back.iter()) {
            assert_eq!(k.as_bytes(), &bk[..]);
            assert_eq!(v.as_bytes(), &bv[..]);
        }
    }

    #[test]
    fn spec_layout() {
        // One pair "a": "bc": count, sizes, "a\0bc\0".
        let want: Vec<u8> = vec![1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, b'a', 0, b'b', b'c', 0];
        assert_eq!(serialize(&[("a", "bc")]), want);
        assert_eq!(deserialize(&want), Some(vec![(b"a".to_vec(), b"bc".to_vec())]));
    }

    #[test]
    fn empty() {
        assert_eq!(deserialize(&[]), Some(vec![]));
        let none: [(&str, &str); 0] = [];
        assert_eq!(deserialize(&serialize(&none)), Some(vec![]));
    }

    #[test]
    fn malformed() {
        let good = serialize(&[("key", "value")]);
        for cut in 1..good.len() {
            assert_eq!(deserialize(&good[..cut]), None, "truncated at {}", cut);
        }
        let mut no_nul = good.clone();
        let last = no_nul.len() - 1;
        no_nul[last] = b'x';
        assert_eq!(deserialize(&no_nul), None);
        // A count whose size table would overflow.
        assert_eq!(deserialize(&[0xff, 0xff, 0xff, 0xff]), None);
    }
}
