//! Link options of the `deploylens` binary in release builds.
//!
//! Without LTO every crate keeps its own copies of the generic code it instantiates
//! (sqlparser's AST impls alone appear dozens of times), and the symbol table is large.
//! Folding identical functions and dropping symbols at link time shrinks the installed
//! binary without recompiling anything: a profile change (`lto`, `strip`) would rebuild
//! all of DataFusion. Debug builds link as before, quickly.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // `PROFILE` is "release" for the profiles that inherit it too; one with debug information
    // (`--profile profiling`, for perf) keeps its symbols.
    let with_debug_info = std::env::var("DEBUG").as_deref() == Ok("true");
    if std::env::var("PROFILE").as_deref() == Ok("release") && !with_debug_info && cfg!(target_os = "linux") {
        println!("cargo:rustc-link-arg-bins=-Wl,--icf=all");
        println!("cargo:rustc-link-arg-bins=-Wl,--strip-all");
    }
}
