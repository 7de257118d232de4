//! loco-cxx (also installed as loco-c++): clang++-16 with the LOCO pass and runtime.
fn main() -> std::process::ExitCode {
    loco_pass::driver::main(true)
}
