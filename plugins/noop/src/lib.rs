//! An HTTP filter that lets every request through untouched, so a benchmark can tell the cost of
//! running a wasm filter at all from the cost of what a filter does.

#[cfg(target_arch = "wasm32")]
mod filter {
    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::ContextType;

    proxy_wasm::main! {{
        proxy_wasm::set_root_context(|_| Box::new(NoopRoot));
    }}

    struct NoopRoot;

    impl Context for NoopRoot {}

    impl RootContext for NoopRoot {
        fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
            Some(Box::new(Noop))
        }

        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::HttpContext)
        }
    }

    struct Noop;

    impl Context for Noop {}

    impl HttpContext for Noop {}
}
