//! The real `coachgraph` binary as a child process: for what only a process shows (its exit
//! code, its start-up errors, its signals, its log lines, two replicas on one database).
#![allow(dead_code)]

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A scratch directory removed when dropped.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new() -> ScratchDir {
        let dir = std::env::temp_dir().join(format!("coachgraph-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        ScratchDir(dir)
    }

    /// A new SQLite database file in this directory, as a `DATABASE_URL`.
    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.0.join("coachgraph.db").display())
    }
}

impl Default for ScratchDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The binary with a clean environment (nothing of the test runner's `DATABASE_URL`,
/// `RUST_LOG` or `COACHGRAPH_*` leaks in), run in `dir`.
pub fn command(dir: &ScratchDir) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coachgraph"));
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).current_dir(&dir.0);
    cmd
}

/// Runs the binary to its end: exit status and everything it printed (stdout then stderr).
pub fn run_to_exit(dir: &ScratchDir, args: &[&str], envs: &[(&str, &str)]) -> (ExitStatus, String) {
    let mut cmd = command(dir);
    cmd.args(args).envs(envs.iter().copied()).stdin(Stdio::null());
    let out = cmd.output().expect("run coachgraph");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status, text)
}

/// A running server process; killed when dropped.
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    output: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `coachgraph serve` on a free port with `envs` (plus `COACHGRAPH_BIND`) and
    /// waits until `/healthz` answers. Panics with the process's output if it exits first.
    pub async fn start(dir: &ScratchDir, envs: &[(&str, &str)]) -> ServerProcess {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let mut cmd = command(dir);
        cmd.arg("serve")
            .env("COACHGRAPH_BIND", addr.to_string())
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn coachgraph");
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let output = output.clone();
            std::thread::spawn(move || collect(stream, &output));
        }
        let mut server = ServerProcess { child, addr, output };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("coachgraph exited during start-up ({status}):\n{}", server.output());
            }
            if let Ok(res) = reqwest::get(server.url("/healthz")).await
                && res.status().is_success()
            {
                return server;
            }
            assert!(Instant::now() < deadline, "coachgraph did not start:\n{}", server.output());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything the process has printed so far.
    pub fn output(&self) -> String {
        self.output.lock().expect("output").clone()
    }

    /// Waits until the output contains `needle` (or panics after `timeout`).
    pub async fn wait_for_output(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.output().contains(needle) {
            assert!(Instant::now() < deadline, "no {needle:?} in the output:\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a signal (`"TERM"`, `"INT"`) to the process.
    pub fn signal(&self, name: &str) {
        let status =
            Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().expect("kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit (or panics after `timeout`).
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the reader threads drain what was printed last.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return status;
            }
            assert!(Instant::now() < deadline, "coachgraph did not exit:\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(mut stream: Box<dyn Read + Send>, output: &Mutex<String>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        output.lock().expect("output").push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}
