fn main() {
    shared::telemetry::init();
}
