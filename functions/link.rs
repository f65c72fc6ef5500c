//! Build script of every function crate: links its binary at a fixed
//! address (not position-independent), unless `CABINET_PIE=1` is set when
//! building. `infra/local-stack` uses it too, so that the hello-world
//! binary its benchmark compares the functions with is linked the same way.
//!
//! Why: a position-independent binary of this size carries ~42,000
//! relocations that the dynamic loader applies at every cold start,
//! writing to ~170 pages of its data; fixed, it carries none. Measured in
//! `infra/bench.sh` (README, Performance). The cost is that the binary's
//! own code sits at the same address in every sandbox (the stack, heap and
//! shared libraries stay randomised). `CABINET_PIE=1` trades the start-up
//! time back for that.
fn main() {
    println!("cargo:rerun-if-env-changed=CABINET_PIE");
    if std::env::var_os("CABINET_PIE").is_none_or(|pie| pie != "1") {
        // Every executable of the crate: binaries, examples, tests.
        println!("cargo:rustc-link-arg=-no-pie");
    }
}
