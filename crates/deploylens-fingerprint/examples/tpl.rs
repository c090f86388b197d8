use std::io::{Read, Write};
fn main() {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).unwrap();
    let mut out = std::io::stdout().lock();
    for m in s.split('\0') {
        write!(out, "{}\0", deploylens_fingerprint::template(m)).unwrap();
    }
}
