//! rust-apikey: a Wedge plugin that lets a request through only with one of
//! the API keys of its configuration, given in a header (`x-api-key` by
//! default) or as `Authorization: Bearer <key>`. Without a key, or with a
//! wrong one, it answers 401 with a JSON body and a `WWW-Authenticate:
//! Bearer` field (RFC 6750 section 3); with a good one it removes the key
//! from the request and tells the upstream whose key it was.
//!
//! Configuration (the plugin's `config:` in wedge.yaml):
//!
//! ```yaml
//! keys: {alice: "k-alice-7f3a", ci: "k-ci-19be"}  # name -> key; required, at least one
//! header: x-api-key           # the field holding the key; default x-api-key
//! client_header: x-api-client # set to the key's name for the upstream; "" to not set it
//! realm: api                  # the WWW-Authenticate realm; default "wedge"
//! ```
//!
//! A configuration without keys is refused: Wedge does not start.

use std::rc::Rc;

use wedge::headers::{self, Map};
use wedge::json::{self, Value};
use wedge::metrics::{Kind, Metric};
use wedge::{Action, HttpContext, RootContext};

wedge::main! {
    wedge::set_root_context(|_| Box::new(Root { config: None, denied: None }));
}

/// What the plugin configuration says.
struct Config {
    /// (name, key) pairs.
    keys: Vec<(String, String)>,
    header: String,
    client_header: String,
    realm: String,
}

impl Config {
    fn parse(data: &[u8]) -> Result<Config, String> {
        let v = json::parse(data).map_err(|e| e.to_string())?;
        let str_or = |name: &str, default: &str| -> Result<String, String> {
            match v.get(name) {
                None => Ok(default.to_string()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(format!("{} must be a string", name)),
            }
        };
        let mut keys = Vec::new();
        match v.get("keys") {
            Some(Value::Object(m)) => {
                for (name, key) in m {
                    match key.as_str() {
                        Some(k) if !k.is_empty() => keys.push((name.clone(), k.to_string())),
                        _ => return Err(format!("keys.{} must be a non-empty string", name)),
                    }
                }
            }
            _ => return Err("keys must be an object of name: key".to_string()),
        }
        if keys.is_empty() {
            return Err("keys is empty: no request could pass".to_string());
        }
        let header = str_or("header", "x-api-key")?.to_ascii_lowercase();
        if header.is_empty() {
            return Err("header must not be empty".to_string());
        }
        Ok(Config { keys, header, client_header: str_or("client_header", "x-api-client")?, realm: str_or("realm", "wedge")? })
    }

    /// The name of the key equal to `given`. Every key is compared in full,
    /// in time independent of where they differ.
    fn find(&self, given: &[u8]) -> Option<&str> {
        let mut found = None;
        for (name, key) in &self.keys {
            if ct_eq(key.as_bytes(), given) && found.is_none() {
                found = Some(name.as_str());
            }
        }
        found
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct Root {
    config: Option<Rc<Config>>,
    denied: Option<Metric>,
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let data = wedge::buffer::plugin_configuration().unwrap_or_default();
        match Config::parse(&data) {
            Ok(c) => {
                wedge::info!("{} API keys loaded; reading them from {} or Authorization: Bearer", c.keys.len(), c.header);
                self.config = Some(Rc::new(c));
                self.denied = Metric::define(Kind::Counter, "apikey_denied_total").ok();
                true
            }
            Err(e) => {
                wedge::error!("rust-apikey configuration: {}", e);
                false
            }
        }
    }

    fn create_http_context(&mut self, _id: u32) -> Option<Box<dyn HttpContext>> {
        let config = self.config.clone()?;
        Some(Box::new(Check { config, denied: self.denied }))
    }
}

struct Check {
    config: Rc<Config>,
    denied: Option<Metric>,
}

impl Check {
    /// The key the client gave: the configured header, else a Bearer token.
    fn given_key(&self) -> Option<Vec<u8>> {
        if let Ok(Some(k)) = headers::get_bytes(Map::RequestHeaders, &self.config.header) {
            return Some(k);
        }
        let auth = headers::get_bytes(Map::RequestHeaders, "authorization").ok()??;
        // RFC 6750 section 2.1: the scheme is case-insensitive.
        if auth.len() > 7 && auth[..7].eq_ignore_ascii_case(b"bearer ") {
            let token = auth[7..].iter().skip_while(|c| **c == b' ').copied().collect::<Vec<u8>>();
            return Some(token);
        }
        None
    }

    fn deny(&self, error: &str, message: &str) -> Action {
        let mut challenge = format!("Bearer realm=\"{}\"", self.config.realm);
        if error == "invalid_api_key" {
            challenge.push_str(", error=\"invalid_token\"");
        }
        let body = format!("{{\"error\":\"{}\",\"message\":\"{}\"}}\n", error, message);
        if let Some(m) = self.denied {
            let _ = m.increment(1);
        }
        let fields = [("content-type", "application/json"), ("www-authenticate", challenge.as_str()), ("cache-control", "no-store")];
        if let Err(e) = wedge::http::send_local_response(401, &fields, body.as_bytes(), error) {
            wedge::error!("sending 401: {}", e);
        }
        Action::Pause
    }
}

impl HttpContext for Check {
    fn on_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let given = match self.given_key() {
            Some(k) => k,
            None => return self.deny("missing_api_key", "this API needs a key, in the x-api-key field or as Authorization: Bearer"),
        };
        let name = match self.config.find(&given) {
            Some(n) => n.to_string(),
            None => return self.deny("invalid_api_key", "the API key is not valid"),
        };
        // The key stays here: the upstream learns whose it was, not the secret.
        let _ = headers::remove(Map::RequestHeaders, &self.config.header);
        let _ = headers::remove(Map::RequestHeaders, "authorization");
        if !self.config.client_header.is_empty() {
            let _ = headers::set(Map::RequestHeaders, &self.config.client_header, &name);
        }
        Action::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_config() {
        let c = Config::parse(br#"{"keys":{"alice":"k1","bob":"k2"},"header":"X-Key","realm":"api"}"#).unwrap();
        assert_eq!(c.header, "x-key");
        assert_eq!(c.client_header, "x-api-client");
        assert_eq!(c.realm, "api");
        assert_eq!(c.find(b"k2"), Some("bob"));
        assert_eq!(c.find(b"k3"), None);
        assert_eq!(c.find(b"k"), None);
        for bad in [&b""[..], b"{}", br#"{"keys":{}}"#, br#"{"keys":["k1"]}"#, br#"{"keys":{"a":""}}"#, br#"{"keys":{"a":"k"},"header":1}"#] {
            assert!(Config::parse(bad).is_err(), "{:?} accepted", String::from_utf8_lossy(bad));
        }
    }
}
