#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The pages in a real browser: Debian's Chromium driven through
//! chromedriver (WebDriver), against the local stack. Screenshots of every
//! step land in `target/tmp/screenshots/` for a person to look at.

use std::sync::LazyLock;
use std::time::Duration;

use e2e::*;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::sync::Semaphore;

/// Two cores: one browser at a time keeps the tests steady.
static BROWSERS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(1));

const PHONE: (u32, u32) = (360, 800);
const DESKTOP: (u32, u32) = (1280, 900);

async fn browser(size: (u32, u32), javascript: bool) -> Client {
    let webdriver = std::env::var("WEBDRIVER_URL")
        .expect("WEBDRIVER_URL must point at chromedriver: run the tests with infra/test.sh");
    let profile = std::env::temp_dir().join(format!("chromium-{}", uuid::Uuid::new_v4()));
    let mut args = vec![
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-quic".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        format!("--window-size={},{}", size.0, size.1),
        format!("--user-data-dir={}", profile.display()),
    ];
    if !javascript {
        args.push("--blink-settings=scriptEnabled=false".to_owned());
    }
    let mut options = json!({"binary": "/usr/bin/chromium", "args": args});
    // Headless windows are never narrower than 500 px: a phone is emulated.
    if size.0 < 500 {
        options["mobileEmulation"] = json!({"deviceMetrics": {"width": size.0, "height": size.1, "pixelRatio": 1.0}});
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&webdriver)
        .await
        .expect("a Chromium session")
}

async fn screenshot(client: &Client, name: &str) {
    let folder = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&folder).unwrap();
    let png = client.screenshot().await.expect("a screenshot");
    std::fs::write(folder.join(format!("{name}.png")), png).unwrap();
}

async fn fill(client: &Client, id: &str, value: &str) {
    let input = client.find(Locator::Id(id)).await.unwrap_or_else(|_| panic!("#{id}"));
    input.clear().await.unwrap();
    input.send_keys(value).await.unwrap();
}

async fn value_of(client: &Client, id: &str) -> String {
    client.find(Locator::Id(id)).await.unwrap().prop("value").await.unwrap().unwrap_or_default()
}

async fn page_text(client: &Client) -> String {
    client.find(Locator::Css("main")).await.unwrap().text().await.unwrap()
}

/// Focuses every link, button and field of the page in turn and measures
/// its focus ring against the background it sits on (the nearest ancestor
/// with one): WCAG 1.4.11 asks for 3:1. Returns the elements that fall
/// short, with their ratio.
async fn weak_focus_rings(client: &Client) -> Vec<String> {
    let script = r#"
        function rgb(color) { return (color.match(/[\d.]+/g) || []).map(Number); }
        function luminance(c) {
            var l = c.slice(0, 3).map(function (v) { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
            return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
        }
        function background(element) {
            for (var e = element; e; e = e.parentElement) {
                var c = rgb(getComputedStyle(e).backgroundColor);
                if (c.length === 3 || (c.length === 4 && c[3] > 0)) { return c; }
            }
            return [255, 255, 255];
        }
        var weak = [];
        document.querySelectorAll("a[href], button, input:not([type=hidden])").forEach(function (element) {
            if (!element.getClientRects().length) { return; }
            element.focus();
            var style = getComputedStyle(element);
            var ring = rgb(style.outlineColor), behind = background(element.parentElement);
            var a = luminance(ring) + 0.05, b = luminance(behind) + 0.05;
            var ratio = Math.max(a, b) / Math.min(a, b);
            if (style.outlineStyle === "none" || ratio < 3) {
                weak.push(element.outerHTML.slice(0, 80) + " " + style.outlineStyle + " " + ratio.toFixed(2));
            }
        });
        document.activeElement.blur();
        return weak;
    "#;
    let weak = client.execute(script, vec![]).await.expect("the focus rings measured");
    serde_json::from_value(weak).expect("a list")
}

/// Submits the page's form and waits for the next page to replace it.
async fn submit(client: &Client) {
    click_and_wait(client, "main form button[type=submit]").await;
}

/// Clicks a button that posts a form and waits for the next page.
async fn click_and_wait(client: &Client, selector: &str) {
    let old_page = client.find(Locator::Css("main")).await.unwrap();
    client.find(Locator::Css(selector)).await.unwrap().click().await.unwrap();
    for _ in 0..200 {
        if old_page.text().await.is_err() {
            client.wait().for_element(Locator::Css("main")).await.unwrap();
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    screenshot(client, "failed-click").await;
    panic!("clicking {selector} did not lead to a new page: {}", page_text(client).await);
}

/// The whole path through the pages: register, open the letter's link,
/// wait, log in, see the account and its balance said as `balance` (the
/// sample accounts owe, are owed and are even).
async fn whole_path(
    app: &TestApp,
    client: &Client,
    (account, name, balance): (&str, &str, &str),
    label: &str,
    javascript: bool,
) {
    let email = unique_email();
    client.goto(&format!("{}/register", app.stack.url)).await.unwrap();
    screenshot(client, &format!("{label}-1-register")).await;
    if javascript {
        let fits =
            client.execute("return document.documentElement.scrollWidth <= window.innerWidth", vec![]).await.unwrap();
        assert_eq!(fits, json!(true), "{label}: the form fits the width without scrolling sideways");
    }
    assert_eq!(weak_focus_rings(client).await, Vec::<String>::new(), "{label}: focus rings of the form");
    // Issue 14: every field is marked required (the «*» is explained on
    // the page); the consent box is drawn 24×24 px, its name is the consent
    // alone (the policy link is outside its label), and the link keeps its
    // words whole.
    let form = client
        .execute(
            r#"var box = document.getElementById("consent").getBoundingClientRect();
               var link = document.querySelector("main a[href='/privacy']");
               return {
                 optional: Array.from(document.querySelectorAll("form[action='/register'] input:not([type=hidden])"))
                   .filter(function (i) { return !i.required; }).map(function (i) { return i.id; }),
                 box: [Math.round(box.width), Math.round(box.height)],
                 link_in_label: link.closest("label") !== null,
                 link_lines: link.getClientRects().length
               };"#,
            vec![],
        )
        .await
        .unwrap();
    let expected = json!({"optional": [], "box": [24, 24], "link_in_label": false, "link_lines": 1});
    assert_eq!(form, expected, "{label}");
    assert!(page_text(client).await.contains("Все поля обязательны, они отмечены звёздочкой (*)."));
    client.execute("document.getElementById('consent').scrollIntoView({block: 'center'})", vec![]).await.unwrap();
    screenshot(client, &format!("{label}-1-register-consent")).await;
    fill(client, "account", account).await;
    fill(client, "full_name", name).await;
    fill(client, "phone", "8 916 123-45-67").await;
    fill(client, "email", &email).await;
    fill(client, "password", PASSWORD).await;
    fill(client, "password_confirm", PASSWORD).await;
    client.find(Locator::Id("consent")).await.unwrap().click().await.unwrap();
    submit(client).await;
    assert!(page_text(client).await.contains("Проверьте почту"), "{}", page_text(client).await);
    screenshot(client, &format!("{label}-2-check-mail")).await;

    let link = app.confirmation_path(&email).await;
    client.goto(&format!("{}{link}", app.stack.url)).await.unwrap();
    let confirmed = page_text(client).await;
    assert!(confirmed.contains("E-mail подтверждён") && confirmed.contains("(МСК)"), "{confirmed}");
    if javascript {
        assert!(confirmed.contains("Осталось") || confirmed.contains("Готово"), "a live countdown: {confirmed}");
    }
    screenshot(client, &format!("{label}-3-confirmed")).await;
    // Issue 14: the stages say which is current, and the countdown is not
    // announced every second: only the final «Готово» is, once.
    let current = client.find(Locator::Css("ol.stages li[aria-current=step]")).await.unwrap().text().await.unwrap();
    assert!(current.starts_with("Сверка с данными начислений"), "{current}");
    let announced = client
        .execute(
            "return document.getElementById('countdown').closest('[aria-live], [role=status], [role=alert], [role=log]') === null",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(announced, json!(true), "the ticking countdown is outside every live region");
    if javascript {
        let status = client.find(Locator::Css("#countdown-done[role=status]")).await.unwrap();
        let mut said = String::new();
        for _ in 0..100 {
            said = status.text().await.unwrap();
            if !said.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(said, "Готово — можно входить.", "the end of the wait is said in the status region");
    }

    for attempt in 0..60 {
        client.goto(&format!("{}/login", app.stack.url)).await.unwrap();
        fill(client, "login", &email).await;
        fill(client, "password", PASSWORD).await;
        if attempt == 0 {
            screenshot(client, &format!("{label}-4-login")).await;
        }
        submit(client).await;
        let text = page_text(client).await;
        if text.contains(&format!("Лицевой счёт {account}")) {
            // Issue 14: «Сальдо» said neither who owes; the page now says
            // «К оплате» or «Переплата» (the assertion changed with it).
            // (WebDriver gives no-break spaces as spaces.)
            let spaced = text.replace('\u{a0}', " ");
            assert!(text.contains("Плательщик") && spaced.contains(balance), "{text}");
            assert!(!text.contains("Сальдо") && !text.contains('−'), "no bare sign: {text}");
            screenshot(client, &format!("{label}-5-account")).await;
            return;
        }
        assert!(text.contains("откроется") || text.contains("завершается"), "{text}");
        if attempt == 0 {
            screenshot(client, &format!("{label}-4-login-too-early")).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the account page did not open");
}

#[tokio::test]
async fn a_resident_goes_the_whole_way_on_a_phone_and_on_a_desktop() {
    let _slot = BROWSERS.acquire().await.unwrap();
    let app = spawn_app().await;
    let phone = browser(PHONE, true).await;
    // Initials, against a record that has initials (issue 10).
    whole_path(&app, &phone, ("100200303", "Петров П. П.", "К оплате\n1 200,00 ₽"), "phone", true).await;
    phone.close().await.unwrap();
    let desktop = browser(DESKTOP, true).await;
    let even = ("100200301", "Салтыков - Щедрин Михаил Евграфович", "К оплате\n0,00 ₽, задолженности нет");
    whole_path(&app, &desktop, even, "desktop", true).await;
    desktop.close().await.unwrap();
}

#[tokio::test]
async fn a_resident_goes_the_whole_way_with_javascript_off() {
    let _slot = BROWSERS.acquire().await.unwrap();
    let app = spawn_app().await;
    // Desktop size: chromedriver cannot emulate a phone with scripts off.
    let client = browser(DESKTOP, false).await;
    whole_path(&app, &client, ("100200302", "Федорова Алена Петровна", "Переплата\n150,00 ₽"), "nojs", false).await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_failed_submit_keeps_the_values_puts_errors_by_their_fields_and_focuses_the_first() {
    let _slot = BROWSERS.acquire().await.unwrap();
    let app = spawn_app().await;
    let client = browser(PHONE, true).await;
    client.goto(&format!("{}/register", app.stack.url)).await.unwrap();
    fill(&client, "account", "100200300").await;
    fill(&client, "full_name", "Иванов Иван Иванович").await;
    fill(&client, "phone", "12345").await;
    fill(&client, "email", "<script>alert(1)</script>").await;
    submit(&client).await;
    screenshot(&client, "errors-phone").await;

    assert_eq!(value_of(&client, "account").await, "100200300");
    assert_eq!(value_of(&client, "full_name").await, "Иванов Иван Иванович");
    assert_eq!(value_of(&client, "email").await, "<script>alert(1)</script>", "typed text comes back as text");
    let phone_error = client.find(Locator::Id("phone-error")).await.unwrap().text().await.unwrap();
    assert!(phone_error.contains("номер"), "{phone_error}");
    let described = client.find(Locator::Id("phone")).await.unwrap().attr("aria-describedby").await.unwrap();
    assert_eq!(described.as_deref(), Some("phone-error"));
    let focused = client.execute("return document.activeElement.id", vec![]).await.unwrap();
    assert_eq!(focused, json!("phone"));
    let alerts = client.get_alert_text().await;
    assert!(alerts.is_err(), "no script ran");
    client.close().await.unwrap();
}

#[tokio::test]
async fn an_email_suggestion_is_taken_with_one_click_and_passwords_can_be_shown() {
    let _slot = BROWSERS.acquire().await.unwrap();
    let app = spawn_app().await;
    let client = browser(PHONE, true).await;
    client.goto(&format!("{}/register", app.stack.url)).await.unwrap();
    fill(&client, "email", "ivanov@mail,ru").await;
    fill(&client, "password", "тайная фраза").await;
    submit(&client).await;
    let suggestion = client.find(Locator::Css("button.suggestion")).await.expect("a suggestion button");
    assert!(suggestion.text().await.unwrap().contains("ivanov@mail.ru"));
    screenshot(&client, "suggestion").await;
    suggestion.click().await.unwrap();
    assert_eq!(value_of(&client, "email").await, "ivanov@mail.ru");

    fill(&client, "password", "тайная фраза").await;
    let reveal = client.find(Locator::Css("#password + button.reveal")).await.expect("a show-password button");
    reveal.click().await.unwrap();
    let kind = client.find(Locator::Id("password")).await.unwrap().attr("type").await.unwrap();
    assert_eq!(kind.as_deref(), Some("text"));
    client.close().await.unwrap();
}

#[tokio::test]
async fn help_privacy_and_missing_pages_share_the_layout() {
    let _slot = BROWSERS.acquire().await.unwrap();
    let app = spawn_app().await;
    let client = browser(PHONE, true).await;
    for (path, heading) in
        [("/help", "Помощь"), ("/privacy", "Обработка персональных данных"), ("/no-such-page", "Страница не найдена")]
    {
        client.goto(&format!("{}{path}", app.stack.url)).await.unwrap();
        let h1 = client.find(Locator::Css("h1")).await.unwrap().text().await.unwrap();
        assert_eq!(h1, heading, "{path}");
        let title = client.title().await.unwrap();
        assert!(title.ends_with("Личный кабинет ООО «Потенциал»"), "{title}");
        screenshot(&client, &format!("page{}", path.replace('/', "-"))).await;
        // Issue 14: header, main and footer links alike.
        assert_eq!(weak_focus_rings(&client).await, Vec::<String>::new(), "{path}");
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn from_the_check_mail_page_the_letter_is_resent_and_the_address_corrected() {
    let _slot = BROWSERS.acquire().await.unwrap();
    let app = spawn_app().await;
    let client = browser(PHONE, true).await;
    // Issue 14: a typo is refused before the letter goes; «Адрес верный»
    // sends it anyway, and then the correction path still offers the fix.
    let typo = format!("{}@gmial.com", uuid::Uuid::new_v4().simple());
    client.goto(&format!("{}/register", app.stack.url)).await.unwrap();
    fill(&client, "account", "100200300").await;
    fill(&client, "full_name", "Иванов Иван Иванович").await;
    fill(&client, "phone", "+79161234567").await;
    fill(&client, "email", &typo).await;
    fill(&client, "password", PASSWORD).await;
    fill(&client, "password_confirm", PASSWORD).await;
    client.find(Locator::Id("consent")).await.unwrap().click().await.unwrap();
    submit(&client).await;
    assert!(page_text(&client).await.contains("Адрес верный"));
    screenshot(&client, "email-typo-held-back").await;
    fill(&client, "password", PASSWORD).await;
    fill(&client, "password_confirm", PASSWORD).await;
    click_and_wait(&client, "button.as-typed").await;
    let text = page_text(&client).await;
    assert!(text.contains("возможно, вы имели в виду"), "{text}");
    screenshot(&client, "check-mail-with-suggestion").await;

    // Correct the address: the suggestion is already in the field.
    let corrected = typo.replace("gmial.com", "gmail.com");
    assert_eq!(value_of(&client, "new-email").await, corrected);
    fill(&client, "change-password", PASSWORD).await;
    click_and_wait(&client, "form[action='/email'] button[type=submit]").await;
    let text = page_text(&client).await;
    assert!(text.contains("Мы отправили письмо"), "{text}");
    screenshot(&client, "address-corrected").await;
    assert_eq!(app.letters_to(&corrected).await.len(), 1);

    // And send the letter once more from there.
    click_and_wait(&client, "form[action='/confirm/resend'] button").await;
    assert!(page_text(&client).await.contains("Письмо отправлено"));
    assert_eq!(app.letters_to(&corrected).await.len(), 2);

    // This browser can come back to see where the registration is.
    client.goto(&format!("{}/register/status", app.stack.url)).await.unwrap();
    let text = page_text(&client).await;
    assert!(text.contains("Состояние регистрации") && text.contains("100200300"), "{text}");
    assert!(text.contains(&format!("{}****@gmail.com", &corrected[..2])), "{text}");
    screenshot(&client, "registration-status").await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_forgotten_password_is_replaced_from_the_login_page() {
    let _slot = BROWSERS.acquire().await.unwrap();
    let app = spawn_app().await;
    let email = unique_email();
    app.active_resident(&email).await;
    let client = browser(PHONE, true).await;
    client.goto(&format!("{}/login", app.stack.url)).await.unwrap();
    click_and_wait(&client, "a[href='/password/forgot']").await;
    screenshot(&client, "forgot-form").await;
    fill(&client, "login", "100 200 300").await;
    submit(&client).await;
    assert!(page_text(&client).await.contains("мы отправили на него письмо"));
    screenshot(&client, "forgot-sent").await;

    let link = app.link_in_letter(&email, "/password/reset?token=").await;
    client.goto(&format!("{}{link}", app.stack.url)).await.unwrap();
    assert!(page_text(&client).await.contains("100200300"));
    // Two different passwords: the form says so by the second field.
    fill(&client, "password", "зелёный троллейбус").await;
    fill(&client, "password_confirm", "зелёный трамвай").await;
    submit(&client).await;
    assert!(page_text(&client).await.contains("Пароли не совпадают"));
    screenshot(&client, "reset-mismatch").await;
    fill(&client, "password", "зелёный троллейбус").await;
    fill(&client, "password_confirm", "зелёный троллейбус").await;
    submit(&client).await;
    assert!(page_text(&client).await.contains("Пароль изменён"));
    screenshot(&client, "reset-done").await;

    // The new password lets the resident in.
    click_and_wait(&client, "main a[href='/login']").await;
    fill(&client, "login", &email).await;
    fill(&client, "password", "зелёный троллейбус").await;
    submit(&client).await;
    assert!(client.current_url().await.unwrap().path().ends_with("/account"));
    client.close().await.unwrap();
}
