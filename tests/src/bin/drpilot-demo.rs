//! `make demo`: the whole DR loop on the emulator (see `drpilot_tests::scenario`).

#[tokio::main]
async fn main() {
    let started = std::time::Instant::now();
    match Box::pin(drpilot_tests::scenario::run()).await {
        Ok(outcome) if outcome.passed => {
            println!("\ndemo passed in {:.1}s", started.elapsed().as_secs_f64());
        }
        Ok(_) => {
            eprintln!("\ndemo FAILED: drpilot did not do what the demo expects (see above)");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("demo failed: {e}");
            std::process::exit(1);
        }
    }
}
