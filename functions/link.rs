//! Build script of every function crate: links its executables at a fixed
//! address (not position-independent) on Linux, unless `CABINET_PIE=1` is
//! set when building. `infra/local-stack` uses it too, so that the
//! hello-world binary its benchmark compares the functions with is linked
//! the same way.
//!
//! Why: a position-independent binary of this size carries ~42,000
//! relative relocations that the dynamic loader applies at every cold
//! start, writing to ~170 pages of its data; fixed, it carries none. The
//! cost, and the figures, are in the README (Security, Residual risks;
//! Performance).
fn main() {
    println!("cargo:rerun-if-env-changed=CABINET_PIE");
    let wanted = std::env::var_os("CABINET_PIE").is_none_or(|pie| pie != "1");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    // A static binary (musl, or glibc with crt-static) is linked as
    // static-pie by rustc, and `-no-pie` contradicts it; other systems'
    // linkers do not take the flag.
    let dynamic_linux = os == "linux" && !features.split(',').any(|feature| feature == "crt-static");
    if wanted && dynamic_linux {
        // Every executable of the crate: binaries, examples, tests.
        println!("cargo:rustc-link-arg=-no-pie");
    } else if wanted {
        println!("cargo:warning=linked position-independent: -no-pie applies to dynamic Linux builds only");
    }
}
