//! Everything unsafe in the module: the C ABI Envoy loads it through (`abi`), safe wrappers of
//! the callbacks it calls (`envoy`), and the entry points Envoy calls (`exports`).

pub mod abi;
// The C enumerators keep their C names, also where they are matched.
#[allow(non_upper_case_globals)]
pub mod envoy;
pub mod exports;
