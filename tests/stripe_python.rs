//! Cross-checks creditgate's webhook signatures with Stripe's official Python library (`stripe`
//! on PyPI, in the venv that scripts/test creates): a header the library makes verifies here, and
//! a header made here verifies there.

use domain::webhook::{WebhookSecret, sign, verify};
use tests::workspace_root;

fn python(script: &str, envs: &[(&str, &str)]) -> anyhow::Result<String> {
    let python = workspace_root().join(".venv/bin/python");
    anyhow::ensure!(
        python.exists(),
        "{} is missing: run scripts/test, which creates it",
        python.display()
    );
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .envs(envs.iter().copied())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

const PAYLOAD: &str = r#"{"id":"evt_cross","object":"event","type":"checkout.session.completed","data":{"object":{"amount_total":500,"currency":"gbp","note":"ünïcode ✓"}}}"#;
const SECRET: &str = "whsec_cross_check_secret";

#[test]
fn a_header_made_by_stripes_python_library_verifies_here() -> anyhow::Result<()> {
    let header = python(
        "import os, stripe\nprint(stripe.WebhookSignature.generate_signature_header(os.environ['PAYLOAD'], os.environ['SECRET']))",
        &[("PAYLOAD", PAYLOAD), ("SECRET", SECRET)],
    )?;
    let now = header
        .split(',')
        .find_map(|p| p.strip_prefix("t="))
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| anyhow::anyhow!("no timestamp in {header}"))?;
    let secret = WebhookSecret::parse(SECRET)?;
    assert_eq!(
        verify(
            PAYLOAD.as_bytes(),
            Some(&header),
            std::slice::from_ref(&secret),
            now + 5,
            300
        ),
        Ok(now)
    );
    let tampered = PAYLOAD.replace("500", "501");
    assert!(verify(tampered.as_bytes(), Some(&header), &[secret], now, 300).is_err());
    Ok(())
}

#[test]
fn a_header_made_here_verifies_with_stripes_python_library() -> anyhow::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let header = sign(PAYLOAD.as_bytes(), &WebhookSecret::parse(SECRET)?, now);
    let verdict = python(
        "import os, stripe\n\
         stripe.WebhookSignature.verify_header(os.environ['PAYLOAD'], os.environ['SIG'], os.environ['SECRET'], 300)\n\
         print('verified')",
        &[("PAYLOAD", PAYLOAD), ("SECRET", SECRET), ("SIG", &header)],
    )?;
    assert_eq!(verdict, "verified");
    Ok(())
}
