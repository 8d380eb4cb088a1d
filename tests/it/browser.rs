//! The web page in a real browser: `tests/browser/walkthrough.mjs` drives
//! headless Chromium (playwright-core) through every role's main flow
//! against the running system, checks each main screen with axe-core, and
//! leaves its screenshots in the test's log directory. The development
//! sign-in it uses is on in embedded mode by default, and off in a
//! distributed deployment unless turned on.

use std::path::PathBuf;

use eventsys_api::auth::Role;
use eventsys_tests::{Setup, System, on_both};
use serde_json::json;

on_both!(every_role_walks_through_the_web_page, Setup::Serve);
on_both!(
    the_development_sign_in_is_on_only_where_allowed,
    Setup::Serve
);

/// Turned on where the deployment must say so.
fn dev_sign_in(setup: Setup) -> Vec<(&'static str, &'static str)> {
    if setup.is_embedded() {
        Vec::new()
    } else {
        vec![("EVENTSYS_DEV_SIGN_IN", "true")]
    }
}

async fn every_role_walks_through_the_web_page(setup: Setup) {
    let system = System::start_with(setup, &dev_sign_in(setup)).await;
    let browser = std::env::var("EVENTSYS_TEST_CHROMIUM")
        .expect("EVENTSYS_TEST_CHROMIUM names the browser; tests/scripts/test.sh installs it");
    let scripts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser");
    let screenshots = system.logs.join("screenshots");
    let output = tokio::process::Command::new("node")
        .arg(scripts.join("walkthrough.mjs"))
        .env("EVENTSYS_BASE_URL", &system.base_url)
        .env("EVENTSYS_CHROMIUM", browser)
        .env("EVENTSYS_SCREENSHOTS", &screenshots)
        .current_dir(&scripts)
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs the walkthrough");
    let printed = String::from_utf8_lossy(&output.stdout);
    println!("{printed}\nscreenshots: {}", screenshots.display());
    assert!(
        output.status.success(),
        "the walkthrough failed (screenshots in {}):\n{printed}\n{}",
        screenshots.display(),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(printed.contains("walkthrough passed; 8 screens met WCAG 2.2 AA"));
}

async fn the_development_sign_in_is_on_only_where_allowed(setup: Setup) {
    let off = System::start(setup).await;
    let anyone = off.anonymous();
    let ask = json!({ "user_id": "mallory", "roles": ["organizer"] });
    let page = anyone.get_text("/").await;
    if setup.is_embedded() {
        // On by default on one's own machine; never an admin.
        assert!(page.contains(r#"data-dev-sign-in="true""#));
        let minted = anyone.post("/v1/dev/token", &ask).await;
        assert_eq!(minted.status, 201, "{:?}", minted.body);
        let me = anyone.acting_as(minted.str("token"));
        assert_eq!(me.get("/v1/webhooks").await.status, 200);
        let admin = anyone
            .post(
                "/v1/dev/token",
                &json!({ "user_id": "mallory", "roles": ["admin"] }),
            )
            .await;
        assert_eq!(admin.status, 422, "{:?}", admin.body);
    } else {
        // Off in a distributed deployment that did not turn it on.
        assert!(page.contains(r#"data-dev-sign-in="false""#));
        let refused = anyone.post("/v1/dev/token", &ask).await;
        assert_eq!(refused.status, 404, "{:?}", refused.body);
        let organizer = off.client("olga", &[Role::Organizer]);
        assert_eq!(organizer.get("/v1/webhooks").await.status, 200);
    }
}
