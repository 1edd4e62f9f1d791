//! Stripe's request encoding: `application/x-www-form-urlencoded` with bracketed keys
//! (`metadata[plan]=basic`, `lookup_keys[0]=a`, `lookup_keys[]=b`, `recurring[interval]=month`),
//! decoded into a JSON value so handlers read parameters the way Stripe documents them.

use serde_json::{Map, Value};

#[derive(Debug, PartialEq, Eq)]
pub struct FormError(pub String);

/// Decodes a form body or query string. Array indices are kept in order of appearance.
pub fn decode(raw: &[u8]) -> Result<Map<String, Value>, FormError> {
    let mut root = Value::Object(Map::new());
    for (key, value) in form_urlencoded::parse(raw) {
        let path = split_key(&key)?;
        insert(&mut root, &path, value.into_owned(), &key)?;
    }
    match root {
        Value::Object(map) => Ok(map),
        _ => Err(FormError("invalid parameters".into())),
    }
}

#[derive(Debug)]
enum Segment {
    Key(String),
    /// `[]` or `[n]`: an array element. `Some(n)` keeps explicit indices distinct.
    Index(Option<usize>),
}

fn split_key(key: &str) -> Result<Vec<Segment>, FormError> {
    let bad = || FormError(format!("Invalid parameter name: {key}"));
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if head.is_empty() {
        return Err(bad());
    }
    let mut path = vec![Segment::Key(head.to_owned())];
    while !rest.is_empty() {
        let close = rest.find(']').ok_or_else(bad)?;
        if !rest.starts_with('[') {
            return Err(bad());
        }
        let inner = &rest[1..close];
        path.push(if inner.is_empty() {
            Segment::Index(None)
        } else if let Ok(n) = inner.parse::<usize>() {
            Segment::Index(Some(n))
        } else {
            Segment::Key(inner.to_owned())
        });
        rest = &rest[close + 1..];
    }
    Ok(path)
}

fn insert(node: &mut Value, path: &[Segment], value: String, key: &str) -> Result<(), FormError> {
    let conflict = || FormError(format!("Invalid parameter structure at {key}"));
    let Some((first, rest)) = path.split_first() else {
        *node = Value::String(value);
        return Ok(());
    };
    match first {
        Segment::Key(k) => {
            if node.is_null() {
                *node = Value::Object(Map::new());
            }
            let Value::Object(map) = node else {
                return Err(conflict());
            };
            let child = map.entry(k.clone()).or_insert(Value::Null);
            if rest.is_empty() && !child.is_null() {
                return Err(FormError(format!("Received duplicate parameter: {key}")));
            }
            insert(child, rest, value, key)
        }
        Segment::Index(index) => {
            if node.is_null() {
                *node = Value::Array(Vec::new());
            }
            let Value::Array(items) = node else {
                return Err(conflict());
            };
            // `a[0][x]=..&a[0][y]=..` address one element; `a[]=..` always appends.
            let slot = match index {
                Some(n) if *n < items.len() && !rest.is_empty() => *n,
                Some(n) if *n == items.len() || rest.is_empty() => {
                    items.push(Value::Null);
                    items.len() - 1
                }
                Some(_) => return Err(conflict()),
                None => {
                    items.push(Value::Null);
                    items.len() - 1
                }
            };
            insert(&mut items[slot], rest, value, key)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bracketed_keys_become_nested_values() {
        let got = decode(b"email=a%40b.com&metadata[sub]=u1&lookup_keys[0]=x&lookup_keys[1]=y&expand[]=data&recurring[interval]=month&line_items[0][price]=p&line_items[0][quantity]=1");
        assert_eq!(
            got.map(Value::Object),
            Ok(json!({
                "email": "a@b.com",
                "metadata": {"sub": "u1"},
                "lookup_keys": ["x", "y"],
                "expand": ["data"],
                "recurring": {"interval": "month"},
                "line_items": [{"price": "p", "quantity": "1"}]
            }))
        );
    }

    #[test]
    fn malformed_keys_are_errors_not_panics() {
        assert!(decode(b"[x]=1").is_err());
        assert!(decode(b"a[x=1").is_err());
        assert!(decode(b"a=1&a[b]=2").is_err());
        assert!(decode(b"a=1&a=2").is_err());
    }
}
