//! Names the library `libloco.so` (its SONAME), so that programs linked
//! through a `libomp.so -> libloco.so` link (loco-cc -fopenmp) record
//! libloco.so as what they need.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libloco.so");
}
