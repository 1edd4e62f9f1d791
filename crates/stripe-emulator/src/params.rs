//! Typed reads of a request's decoded parameters, each failing with Stripe's error for that case.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::ApiError;

pub struct Params {
    map: Map<String, Value>,
}

/// A range filter (`created[gte]=...`); an absent bound admits everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    pub gt: Option<i64>,
    pub gte: Option<i64>,
    pub lt: Option<i64>,
    pub lte: Option<i64>,
}

impl Range {
    pub fn admits(&self, value: i64) -> bool {
        self.gt.is_none_or(|b| value > b)
            && self.gte.is_none_or(|b| value >= b)
            && self.lt.is_none_or(|b| value < b)
            && self.lte.is_none_or(|b| value <= b)
    }
}

impl Params {
    /// Refuses any top-level parameter not in `allowed` (`expand` is always allowed), as Stripe
    /// does: a misspelt parameter is an error, never silently ignored.
    pub fn new(map: Map<String, Value>, allowed: &[&str]) -> Result<Self, ApiError> {
        if let Some(unknown) = map
            .keys()
            .find(|k| k.as_str() != "expand" && !allowed.contains(&k.as_str()))
        {
            return Err(ApiError::unknown_param(unknown));
        }
        Ok(Self { map })
    }

    /// For nested parameters: refuses keys not in `allowed`, naming them as `prefix[key]`.
    pub fn refuse_unknown(&self, allowed: &[&str], prefix: &str) -> Result<(), ApiError> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(ApiError::unknown_param(&format!("{prefix}[{k}]"))),
            None => Ok(()),
        }
    }

    pub fn str(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.map.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::invalid(
                format!("Invalid string: {name}"),
                Some(name),
            )),
        }
    }

    pub fn required_str(&self, name: &str) -> Result<String, ApiError> {
        match self.str(name)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(ApiError::missing_param(name)),
        }
    }

    /// An optional string where Stripe accepts `""` to unset the field.
    pub fn nullable_str(&self, name: &str) -> Result<Option<Value>, ApiError> {
        Ok(self.str(name)?.map(|s| {
            if s.is_empty() {
                Value::Null
            } else {
                Value::String(s)
            }
        }))
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.str(name)?.as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(ApiError::invalid(
                format!("Invalid boolean: {name}"),
                Some(name),
            )),
        }
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.str(name)? {
            None => Ok(None),
            Some(s) => s
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::invalid(format!("Invalid integer: {s}"), Some(name))),
        }
    }

    /// A range filter as Stripe takes it: `created=<ts>` (exactly) or
    /// `created[gt|gte|lt|lte]=<ts>`.
    pub fn range(&self, name: &str) -> Result<Range, ApiError> {
        if let Some(Value::String(_)) = self.map.get(name) {
            let at = self.int(name)?;
            return Ok(Range {
                gte: at,
                lte: at,
                ..Range::default()
            });
        }
        let Some(bounds) = self.object(name)? else {
            return Ok(Range::default());
        };
        bounds.refuse_unknown(&["gt", "gte", "lt", "lte"], name)?;
        let bound = |key: &str| {
            bounds.int(key).map_err(|_| {
                ApiError::invalid(
                    format!("Invalid integer: {name}[{key}]"),
                    Some(&format!("{name}[{key}]")),
                )
            })
        };
        Ok(Range {
            gt: bound("gt")?,
            gte: bound("gte")?,
            lt: bound("lt")?,
            lte: bound("lte")?,
        })
    }

    pub fn object(&self, name: &str) -> Result<Option<Params>, ApiError> {
        match self.map.get(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Params { map: m.clone() })),
            Some(_) => Err(ApiError::invalid(
                format!("Invalid object: {name}"),
                Some(name),
            )),
        }
    }

    /// An array of objects (`line_items[0][price]=...`).
    pub fn objects(&self, name: &str) -> Result<Option<Vec<Params>>, ApiError> {
        match self.map.get(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::Object(m) => Ok(Params { map: m.clone() }),
                    _ => Err(ApiError::invalid(
                        format!("Invalid array of objects: {name}"),
                        Some(name),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(ApiError::invalid(
                format!("Invalid array: {name}"),
                Some(name),
            )),
        }
    }

    pub fn strings(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.map.get(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(ApiError::invalid(
                        format!("Invalid array: {name}"),
                        Some(name),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(ApiError::invalid(
                format!("Invalid array: {name}"),
                Some(name),
            )),
        }
    }

    /// Applies `metadata[...]` to `current` as Stripe does: a key set to `""` is removed, and
    /// `metadata=""` clears everything.
    pub fn merge_metadata(&self, current: &Value) -> Result<Value, ApiError> {
        let mut merged: BTreeMap<String, Value> = match current {
            Value::Object(m) => m.clone().into_iter().collect(),
            _ => BTreeMap::new(),
        };
        match self.map.get("metadata") {
            None => {}
            Some(Value::String(s)) if s.is_empty() => merged.clear(),
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    match v {
                        Value::String(s) if s.is_empty() => {
                            merged.remove(k);
                        }
                        Value::String(s) => {
                            if k.len() > 40 || s.len() > 500 {
                                return Err(ApiError::invalid(
                                    "Metadata keys are limited to 40 characters and values to 500.",
                                    Some("metadata"),
                                ));
                            }
                            merged.insert(k.clone(), Value::String(s.clone()));
                        }
                        _ => {
                            return Err(ApiError::invalid(
                                "Invalid metadata value",
                                Some("metadata"),
                            ));
                        }
                    }
                }
            }
            Some(_) => {
                return Err(ApiError::invalid(
                    "Invalid object: metadata",
                    Some("metadata"),
                ));
            }
        }
        Ok(Value::Object(merged.into_iter().collect()))
    }
}
