//! A real MySQL-protocol server for the collector's TiDB store: Debian's
//! MariaDB (`scripts/prerequisites.sh --nextest` installs it), started for
//! the test as the unprivileged `mysql` user on a free port of 127.0.0.1,
//! with a fresh data directory under the test's temporary directory, and
//! stopped when dropped. A user `tt` with a password may do anything.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The password of user `tt`: spaces and URL delimiters, which the URL
/// could not carry unencoded.
pub const PASSWORD: &str = "p w:@/#?";

pub struct MariaDb {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

/// How long the server may take to start.
const START: Duration = Duration::from_secs(60);

impl MariaDb {
    pub fn start() -> MariaDb {
        for tool in ["mariadb-install-db", "mariadbd", "mariadb"] {
            assert!(
                Command::new("sh")
                    .args(["-c", &format!("command -v {tool}")])
                    .stdout(Stdio::null())
                    .status()
                    .unwrap()
                    .success(),
                "{tool} is missing: run the tests with `bash scripts/test.sh` (it installs \
                 Debian's mariadb-server)"
            );
        }
        let dir = super::temp_dir("mariadb");
        // The server runs as `mysql`: its directory is its own, 0700.
        run(Command::new("chown").args(["mysql:mysql"]).arg(&dir));
        run(Command::new("chmod").arg("700").arg(&dir));
        let small = [
            "--innodb-log-file-size=16M",
            "--innodb-buffer-pool-size=64M",
        ];
        run(Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .args([
                "--user=mysql",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .args(small));
        let port = free_port();
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--socket={}", dir.join("sock").display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .arg(format!("--log-error={}", dir.join("error.log").display()))
            .arg(format!("--port={port}"))
            .args(["--bind-address=127.0.0.1", "--user=mysql"])
            .args(small)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run mariadbd");
        let mut server = MariaDb { child, port, dir };
        let start = Instant::now();
        while !(server.dir.join("sock").exists()
            && TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok())
        {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("mariadbd stopped ({status}): {}", server.error_log());
            }
            assert!(
                start.elapsed() < START,
                "mariadbd did not start in {START:?}: {}",
                server.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server.sql(&format!(
            "CREATE USER 'tt'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; \
             CREATE USER 'tt'@'localhost' IDENTIFIED BY '{PASSWORD}'; \
             GRANT ALL PRIVILEGES ON *.* TO 'tt'@'127.0.0.1'; \
             GRANT ALL PRIVILEGES ON *.* TO 'tt'@'localhost'"
        ));
        server
    }

    /// A new empty database: its `--db` URL (no password).
    pub fn database(&self, name: &str) -> String {
        self.sql(&format!("CREATE DATABASE {name}"));
        format!("mysql://tt@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs `sql` as root on the server's socket: what it prints (tab-separated
    /// rows, no header).
    pub fn sql(&self, sql: &str) -> String {
        let out = Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .args([
                "-uroot",
                "--batch",
                "--raw",
                "--skip-column-names",
                "-e",
                sql,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A password file for `--db-password-file`: 0600, the password and a newline.
    pub fn password_file(&self, dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let file = dir.join("db-password");
        std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        file
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        // SIGTERM: a clean shutdown; SIGKILL if it takes too long.
        let pid = self.child.id() as libc::pid_t;
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
