//! Build script of every function crate (`build = "../../infra/link.rs"`):
//! with `CABINET_FIXED_ADDRESS=1` set when building, links its executables
//! at a fixed address (not position-independent) on Linux. The benchmark's
//! hello-world reference (`infra/bench/hello-lambda`) uses it too, so that
//! it is linked the same way as the functions it is compared with.
//!
//! A position-independent binary of this size carries ~42,000 relative
//! relocations that the dynamic loader applies at every cold start; fixed,
//! it carries none, and starts about 0.4 ms sooner (README, Performance).
//! It is not the default: the binary, nearly all the code that runs, would
//! sit at the same address in every sandbox.
fn main() {
    println!("cargo:rerun-if-env-changed=CABINET_FIXED_ADDRESS");
    let wanted = std::env::var_os("CABINET_FIXED_ADDRESS").is_some_and(|fixed| fixed == "1");
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
        println!("cargo:warning=linked position-independent: a fixed address applies to dynamic Linux builds only");
    }
}
