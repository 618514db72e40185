// A reader for the plugin configuration: Wedge hands wedge.yaml's config:
// to proxy_on_configure as JSON (RFC 8259). It reads one object's members
// whose values are strings, numbers, booleans or null; nested objects and
// arrays are checked and skipped.

/** The scalar members of a JSON object. */
export class JSONObject {
  strings: Map<string, string> = new Map();
  numbers: Map<string, f64> = new Map();
  bools: Map<string, bool> = new Map();
  keys: string[] = [];

  /** Whether the object has member key (any type). */
  has(key: string): bool { return this.keys.includes(key); }
  /** Member key if it is a string, else def. */
  getString(key: string, def: string = ""): string { return this.strings.has(key) ? this.strings.get(key) : def; }
  /** Member key if it is a number, else def. */
  getNumber(key: string, def: f64 = 0): f64 { return this.numbers.has(key) ? this.numbers.get(key) : def; }
  /** Member key if it is true or false, else def. */
  getBool(key: string, def: bool = false): bool { return this.bools.has(key) ? this.bools.get(key) : def; }
}

/** Parses text (UTF-8 bytes, as onConfigure receives them) as a JSON object. Empty input is an
 * empty object; anything else that is not one object returns null. */
export function parseJSONObject(text: ArrayBuffer): JSONObject | null {
  const p = new parser(String.UTF8.decode(text));
  p.space();
  const obj = new JSONObject();
  if (p.eof()) return obj;
  if (!p.object(obj, 0)) return null;
  p.space();
  return p.eof() ? obj : null;
}

class parser {
  i: i32 = 0;
  constructor(public s: string) {}

  eof(): bool { return this.i >= this.s.length; }
  peek(): i32 { return this.eof() ? -1 : this.s.charCodeAt(this.i); }
  space(): void {
    while (!this.eof()) {
      const c = this.peek();
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) return;
      this.i++;
    }
  }
  lit(word: string): bool {
    if (this.s.substr(this.i, word.length) != word) return false;
    this.i += word.length;
    return true;
  }

  // object reads {...}; obj receives the scalar members when depth is 0.
  object(obj: JSONObject | null, depth: i32): bool {
    if (depth > 64 || this.peek() != 0x7b) return false;
    this.i++;
    this.space();
    if (this.peek() == 0x7d) { this.i++; return true; }
    for (;;) {
      this.space();
      const key = this.str();
      if (key == null) return false;
      this.space();
      if (this.peek() != 0x3a) return false;
      this.i++;
      this.space();
      if (!this.value(obj, key, depth)) return false;
      this.space();
      const c = this.peek();
      this.i++;
      if (c == 0x7d) return true;
      if (c != 0x2c) return false;
    }
    return false;
  }

  array(depth: i32): bool {
    if (depth > 64) return false;
    this.i++; // [
    this.space();
    if (this.peek() == 0x5d) { this.i++; return true; }
    for (;;) {
      this.space();
      if (!this.value(null, "", depth)) return false;
      this.space();
      const c = this.peek();
      this.i++;
      if (c == 0x5d) return true;
      if (c != 0x2c) return false;
    }
    return false;
  }

  value(obj: JSONObject | null, key: string, depth: i32): bool {
    const c = this.peek();
    if (obj != null) obj.keys.push(key);
    if (c == 0x22) {
      const v = this.str();
      if (v == null) return false;
      if (obj != null) obj.strings.set(key, v);
      return true;
    }
    if (c == 0x7b) return this.object(null, depth + 1);
    if (c == 0x5b) return this.array(depth + 1);
    if (this.lit("true")) { if (obj != null) obj.bools.set(key, true); return true; }
    if (this.lit("false")) { if (obj != null) obj.bools.set(key, false); return true; }
    if (this.lit("null")) return true;
    const start = this.i;
    while (!this.eof()) {
      const d = this.peek();
      if (!((d >= 0x30 && d <= 0x39) || d == 0x2d || d == 0x2b || d == 0x2e || d == 0x65 || d == 0x45)) break;
      this.i++;
    }
    if (this.i == start) return false;
    const n = parseFloat(this.s.substring(start, this.i));
    if (isNaN(n)) return false;
    if (obj != null) obj.numbers.set(key, n);
    return true;
  }

  // str reads a string literal, or returns null.
  str(): string | null {
    if (this.peek() != 0x22) return null;
    this.i++;
    let out = "";
    let run = this.i;
    while (!this.eof()) {
      const c = this.peek();
      if (c == 0x22) {
        out += this.s.substring(run, this.i);
        this.i++;
        return out;
      }
      if (c < 0x20) return null;
      if (c != 0x5c) { this.i++; continue; }
      out += this.s.substring(run, this.i);
      this.i++;
      const e = this.peek();
      this.i++;
      if (e == 0x22) out += "\"";
      else if (e == 0x5c) out += "\\";
      else if (e == 0x2f) out += "/";
      else if (e == 0x62) out += "\b";
      else if (e == 0x66) out += "\f";
      else if (e == 0x6e) out += "\n";
      else if (e == 0x72) out += "\r";
      else if (e == 0x74) out += "\t";
      else if (e == 0x75) {
        if (this.i + 4 > this.s.length) return null;
        let code: i32 = 0;
        for (let k = 0; k < 4; k++) {
          const h = this.s.charCodeAt(this.i++);
          let d: i32 = -1;
          if (h >= 0x30 && h <= 0x39) d = h - 0x30;
          else if (h >= 0x61 && h <= 0x66) d = h - 0x61 + 10;
          else if (h >= 0x41 && h <= 0x46) d = h - 0x41 + 10;
          if (d < 0) return null;
          code = code * 16 + d;
        }
        out += String.fromCharCode(code);
      } else return null;
      run = this.i;
    }
    return null;
  }
}
