//! loco-cxx (also installed as loco-c++): clang++-16 with the LOCO pass and
//! runtime (see loco_pass::driver).
fn main() -> std::process::ExitCode {
    loco_pass::driver::main(loco_pass::driver::Language::Cxx)
}
