//! The switch rule lives on both sides: Java's pre-check on the caller's
//! thread (certainly off: nothing is loaded) and the native rule that decides
//! everything else. One table each (tests/fixtures/*.tsv) holds what both must
//! decide; the Java side is asked in a real JVM.

mod support;

use support::jvm::{self, isolated};
use tispark_telemetry::conf::{self, Decision};

/// `\t \n \r \\ \uXXXX` unescaped.
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16).expect("\\uXXXX");
                out.push(char::from_u32(code).expect("a scalar value"));
            }
            other => panic!("unknown escape \\{other:?}"),
        }
    }
    out
}

/// (value, expected) rows; `None` for `<absent>`.
fn table(name: &str) -> Vec<(Option<String>, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (value, expected) = l.rsplit_once('\t').expect("value<TAB>expected");
            let value = (value != "<absent>").then(|| unescape(value));
            (value, expected.to_string())
        })
        .collect()
}

fn native(value: Option<&str>) -> &'static str {
    match conf::decide(value, |_| None) {
        Decision::On => "on",
        Decision::OffByConf => "off",
        Decision::OffInvalid(_) => "invalid",
        Decision::OffByEnv(_) => unreachable!("no environment given"),
    }
}

#[test]
fn the_native_rule_decides_each_switch_value_as_the_table_says() {
    let rows = table("switch-values.tsv");
    assert!(rows.len() >= 25, "{rows:?}");
    for (value, expected) in rows {
        assert_eq!(native(value.as_deref()), expected, "{value:?}");
    }
}

#[test]
fn the_native_rule_reads_each_off_switch_value_as_the_table_says() {
    for (value, expected) in table("off-switch-env-values.tsv") {
        let value = value.unwrap();
        for var in conf::DISABLE_ENV_VARS {
            let env = |v: &str| (v == var).then(|| value.clone());
            let disables = conf::disabled_by_env(env).is_some();
            assert_eq!(disables, expected == "disables", "{var}={value:?}");
        }
    }
}

#[test]
fn java_decides_each_value_as_the_native_rule_does() {
    let Some(run) = isolated(&[], || {
        let vm = jvm::start_jvm(&[]);
        let mut env = vm.attach_current_thread().unwrap();
        let mut ask = |method: &str, value: Option<&str>| -> bool {
            let arg = match value {
                Some(v) => jni::objects::JObject::from(env.new_string(v).unwrap()),
                None => jni::objects::JObject::null(),
            };
            let answer = env
                .call_static_method(
                    jvm::API,
                    method,
                    "(Ljava/lang/String;)Z",
                    &[jni::objects::JValue::Object(&arg)],
                )
                .unwrap()
                .z()
                .unwrap();
            jvm::assert_no_exception(&mut env);
            env.delete_local_ref(arg).unwrap();
            answer
        };
        for (value, expected) in table("switch-values.tsv") {
            // Java says "certainly off" exactly where the native rule says off.
            let java_off = ask("isOff", value.as_deref());
            assert_eq!(java_off, expected == "off", "Java, switch {value:?}");
        }
        for (value, expected) in table("off-switch-env-values.tsv") {
            let disables = ask("disables", value.as_deref());
            assert_eq!(
                disables,
                expected == "disables",
                "Java, off switch {value:?}"
            );
        }
        println!("PARITY_CHECKED");
    }) else {
        return;
    };
    run.assert_clean();
    assert!(run.output.contains("PARITY_CHECKED"), "{}", run.output);
}

/// Every character of the Basic Multilingual Plane's first 12,288 and the
/// bidirectional controls: the Java side's log escaping (`TelemetryLog.logSafe`,
/// every record of its own) and the native side's (`log_line::escaped`) give the
/// same text, and it holds no control, bidirectional control or line separator.
#[test]
fn java_escapes_what_it_logs_as_the_native_side_does() {
    let sample: String = (0u32..0x3000).filter_map(char::from_u32).collect();
    let Some(run) = isolated(&[], || {
        let vm = jvm::start_jvm(&[]);
        let mut env = vm.attach_current_thread().unwrap();
        let arg = env.new_string(&sample).unwrap();
        let answer = env
            .call_static_method(
                "com/pingcap/tispark/telemetry/TelemetryLog",
                "logSafe",
                "(Ljava/lang/String;)Ljava/lang/String;",
                &[jni::objects::JValue::Object(&arg)],
            )
            .unwrap()
            .l()
            .unwrap();
        jvm::assert_no_exception(&mut env);
        let java: String = env.get_string(&answer.into()).unwrap().into();
        let native = tispark_telemetry::log_line::escaped(&sample);
        assert_eq!(java, native);
        assert!(!java.chars().any(tispark_telemetry::log_line::needs_escape));
        assert!(
            java.contains("\\u{85}") && java.contains("\\u{202e}") && java.contains("\\u{2028}")
        );
        println!("ESCAPING_CHECKED");
    }) else {
        return;
    };
    run.assert_clean();
    assert!(run.output.contains("ESCAPING_CHECKED"), "{}", run.output);
}
