//! Table-driven tests: `cases!(a, b, c)` in a module with a `CASES` table (rows with a
//! `name`) and an `async fn run_case(&Case)` makes one named `#[tokio::test]` per row
//! (a failure names its row) and a test that no row of the table lacks its test.

/// One named test per row of a table module's `CASES` (each row's `name` is its test's
/// name; `run_case` runs a row), and a test that no row lacks its test.
#[macro_export]
macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let c = CASES
                    .iter()
                    .find(|c| c.name == stringify!($name))
                    .expect("a row of CASES");
                run_case(c).await;
            }
        )*

        #[test]
        fn every_row_has_its_test() {
            let tested: &[&str] = &[$(stringify!($name)),*];
            for c in CASES {
                assert!(tested.contains(&c.name), "{} has no test in cases!", c.name);
            }
        }
    };
}
