//! Adopting what wrangler built: the example's storage made by the real
//! wrangler (no location hint given, so R2 places the bucket where it
//! likes) is planned as `adopt`, never replaced; apply records it, and the
//! plan after is empty.

use predicates::str::contains;

use crate::requests::example;
use crate::support::{TestEmulator, flareops};
use crate::wrangler::{Wrangler, wrangler_or_skip};

#[test]
fn storage_wrangler_made_is_adopted_not_replaced() {
    let Some(bin) = wrangler_or_skip("storage_wrangler_made_is_adopted_not_replaced") else {
        return;
    };
    let emulator = TestEmulator::start_with_zones(&["klearkarma.com"]);
    let wrangler = Wrangler::new(bin, &emulator);
    for title in [
        "users",
        "practitioners",
        "appointments",
        "messages",
        "services",
        "reviews",
        "analytics",
    ] {
        wrangler
            .run(&[
                "kv",
                "namespace",
                "create",
                &format!("klear-karma-{title}-staging"),
            ])
            .success();
    }
    wrangler
        .run(&["d1", "create", "klear-karma-staging"])
        .success();
    wrangler
        .run(&["r2", "bucket", "create", "klear-karma-assets-staging"])
        .success();

    let root = example(&emulator);
    let plan = flareops(root.path(), &emulator)
        .args(["plan", "--env", "staging"])
        .env("KLEAR_KARMA_JWT_SECRET", "jwt")
        .env("KLEAR_KARMA_API_KEY", "key")
        .output()
        .expect("plan");
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(plan.status.success(), "{text}");
    for address in [
        "kv_namespaces.users",
        "kv_namespaces.analytics",
        "d1_databases.main",
        "r2_buckets.assets",
    ] {
        assert!(text.contains(&format!("<= adopt {address}")), "{text}");
    }
    assert!(!text.contains("-/+ replace"), "{text}");
    assert!(text.contains("0 to replace"), "{text}");
    assert!(text.contains("9 to adopt"), "{text}");

    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes"])
        .env("KLEAR_KARMA_JWT_SECRET", "jwt")
        .env("KLEAR_KARMA_API_KEY", "key")
        .assert()
        .success()
        .stdout(contains("adopted"));
    flareops(root.path(), &emulator)
        .args(["plan", "--env", "staging", "--detailed-exitcode"])
        .env("KLEAR_KARMA_JWT_SECRET", "jwt")
        .env("KLEAR_KARMA_API_KEY", "key")
        .assert()
        .code(0);
}
