//! A real registry for the tests: Debian's `docker-registry` on 127.0.0.1 at a free port, with
//! filesystem storage in a temp dir, optionally behind htpasswd Basic auth. It is killed when the
//! handle drops. Also: OCI images made by other tools (umoci) and copied in with skopeo.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A running `docker-registry serve`.
pub(crate) struct TestRegistry {
    child: Option<Child>,
    dir: TempDir,
    port: u16,
    /// Basic-auth user and password, when the registry requires them.
    pub(crate) auth: Option<(String, String)>,
    /// Whether it serves HTTPS (a certificate for 127.0.0.1 and localhost signed by
    /// [`TestRegistry::ca_certificate`]).
    tls: bool,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl TestRegistry {
    /// A registry without auth.
    pub(crate) fn start() -> TestRegistry {
        Self::start_inner(None)
    }

    /// A registry that requires `user`/`password` (htpasswd, bcrypt).
    pub(crate) fn start_with_auth(user: &str, password: &str) -> TestRegistry {
        Self::start_inner(Some((user.to_owned(), password.to_owned())))
    }

    /// A registry without auth serving HTTPS only, with a certificate signed by a CA made for
    /// this registry ([`TestRegistry::ca_certificate`]) with the `openssl` CLI.
    pub(crate) fn start_with_tls() -> TestRegistry {
        Self::start_full(None, true)
    }

    fn start_inner(auth: Option<(String, String)>) -> TestRegistry {
        Self::start_full(auth, false)
    }

    fn start_full(auth: Option<(String, String)>, tls: bool) -> TestRegistry {
        let dir = tempfile::tempdir().expect("registry temp dir");
        let mut reg = TestRegistry {
            child: None,
            dir,
            port: free_port(),
            auth,
            tls,
        };
        if tls {
            reg.make_certificates();
        }
        reg.write_config();
        reg.spawn();
        reg
    }

    fn write_config(&self) {
        let auth = match &self.auth {
            Some((user, password)) => {
                let line = run(Command::new("htpasswd").args(["-Bbn", user, password]));
                let path = self.dir.path().join("htpasswd");
                std::fs::write(&path, line.trim_end()).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: dray-test\n    path: {}\n",
                    path.display()
                )
            }
            None => String::new(),
        };
        let tls = if self.tls {
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                self.dir.path().join("server.crt").display(),
                self.dir.path().join("server.key").display()
            )
        } else {
            String::new()
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n{auth}http:\n  addr: 127.0.0.1:{}\n{tls}",
            self.storage().display(),
            self.port
        );
        std::fs::write(self.dir.path().join("config.yml"), config).expect("write config");
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the registry log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry (apt-get install docker-registry)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {}: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A CA (`ca.crt`) and a server certificate it signs for `IP:127.0.0.1` and `DNS:localhost`
    /// (`server.crt`, `server.key`), P-256 keys, valid for two days.
    fn make_certificates(&self) {
        let dir = self.dir.path();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(Command::new("openssl")
            .current_dir(dir)
            .args(["req", "-x509"])
            .args(ec)
            .args(["-keyout", "ca.key", "-out", "ca.crt", "-days", "2"])
            .args(["-subj", "/CN=dray test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
        run(Command::new("openssl")
            .current_dir(dir)
            .arg("req")
            .args(ec)
            .args(["-keyout", "server.key", "-out", "server.csr"])
            .args(["-subj", "/CN=127.0.0.1"]));
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write the extensions");
        run(Command::new("openssl").current_dir(dir).args([
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]));
    }

    /// The CA certificate (PEM) that signed an HTTPS registry's certificate.
    pub(crate) fn ca_certificate(&self) -> PathBuf {
        assert!(self.tls, "only an HTTPS registry has a CA");
        self.dir.path().join("ca.crt")
    }

    /// Kills the registry (connections drop; the port stops answering).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same storage.
    pub(crate) fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// `127.0.0.1:PORT`.
    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's storage root.
    pub(crate) fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Where the registry keeps the blob `sha256:<hex>`.
    pub(crate) fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// Everything the registry logged (including its access log).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Access-log lines of `GET …/blobs/sha256:…` requests so far (downloads of layers and
    /// configs).
    pub(crate) fn blob_gets(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains("/blobs/sha256:"))
            .map(str::to_owned)
            .collect()
    }

    /// skopeo's credential flag for this registry (`--src-creds`/`--dest-creds`), if any.
    fn creds(&self, flag: &str) -> Vec<String> {
        match &self.auth {
            Some((u, p)) => vec![format!("{flag}={u}:{p}")],
            None => Vec::new(),
        }
    }

    /// `skopeo copy [--all] SRC docker://HOST/DEST`.
    pub(crate) fn skopeo_push(&self, src: &str, dest: &str, all: bool) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if all {
            cmd.arg("--all");
        }
        cmd.args(self.creds("--dest-creds"));
        cmd.arg(src).arg(format!("docker://{}/{dest}", self.host()));
        run(&mut cmd);
    }

    /// `skopeo copy --all --format v2s2 SRC docker://HOST/DEST`: an OCI index arrives as a
    /// Docker manifest list, its images as Docker schema 2 manifests.
    pub(crate) fn skopeo_push_docker_list(&self, src: &str, dest: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--all",
            "--format",
            "v2s2",
        ]);
        cmd.args(self.creds("--dest-creds"));
        cmd.arg(src).arg(format!("docker://{}/{dest}", self.host()));
        run(&mut cmd);
    }

    /// `skopeo inspect [--raw] docker://HOST/NAME` as JSON.
    pub(crate) fn skopeo_inspect(&self, name: &str, raw: bool) -> serde_json::Value {
        let mut cmd = Command::new("skopeo");
        cmd.args(["inspect", "--tls-verify=false"]);
        if raw {
            cmd.arg("--raw");
        }
        cmd.args(self.creds("--creds"));
        cmd.arg(format!("docker://{}/{name}", self.host()));
        serde_json::from_str(&run(&mut cmd)).expect("skopeo inspect prints JSON")
    }

    /// `skopeo copy docker://HOST/NAME oci:DIR:TAG` (reads every blob back, verifying digests).
    pub(crate) fn skopeo_pull(&self, name: &str, layout: &Path, tag: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet", "--src-tls-verify=false"]);
        cmd.args(self.creds("--src-creds"));
        cmd.arg(format!("docker://{}/{name}", self.host()));
        cmd.arg(format!("oci:{}:{tag}", layout.display()));
        run(&mut cmd);
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Builds an OCI image with umoci in `layout` under `tag`: one layer per entry of `layers`, each
/// a list of (path, contents) written into the rootfs. `arch` sets the config's architecture.
pub(crate) fn umoci_image(layout: &Path, tag: &str, arch: &str, layers: &[&[(&str, &str)]]) {
    if !layout.join("index.json").exists() {
        run(Command::new("umoci").args(["init", "--layout"]).arg(layout));
    }
    let image = format!("{}:{tag}", layout.display());
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--architecture",
        arch,
        "--os",
        "linux",
    ]));
    let work = tempfile::tempdir().expect("umoci bundle dir");
    for files in layers {
        let bundle = work.path().join("bundle");
        run(Command::new("umoci")
            .args(["unpack", "--rootless", "--image", &image])
            .arg(&bundle));
        for (path, contents) in *files {
            let target = bundle.join("rootfs").join(path);
            std::fs::create_dir_all(target.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&target, contents).expect("write a rootfs file");
        }
        run(Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle));
        std::fs::remove_dir_all(&bundle).expect("remove the bundle");
    }
}

/// Builds with umoci in `layout` under `tag` a one-layer image holding Debian's static busybox
/// (`/bin/busybox`, with `/bin/sh` and `/bin/cat` linked to it) and `files`: an image with a
/// shell, made by another tool, that a `RUN` step can build upon.
pub(crate) fn umoci_busybox_image(layout: &Path, tag: &str, files: &[(&str, &str)]) {
    umoci_image(layout, tag, "amd64", &[files]);
    let image = format!("{}:{tag}", layout.display());
    let work = tempfile::tempdir().expect("umoci bundle dir");
    let bundle = work.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image", &image])
        .arg(&bundle));
    let bin = bundle.join("rootfs/bin");
    std::fs::create_dir_all(&bin).expect("mkdir bin");
    std::fs::copy("/bin/busybox", bin.join("busybox"))
        .expect("copy /bin/busybox (apt-get install busybox-static)");
    for applet in ["sh", "cat", "echo"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("link an applet");
    }
    run(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle));
}

/// The manifest descriptor (JSON) tagged `tag` in an OCI layout's index.json.
pub(crate) fn layout_descriptor(layout: &Path, tag: &str) -> serde_json::Value {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("read index.json"))
            .expect("index.json is JSON");
    index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .cloned()
        .unwrap_or_else(|| panic!("no {tag} in {}", layout.display()))
}

/// Adds to an OCI layout an image index named `tag` over the manifests tagged `tags`, each with
/// its (os, architecture) platform, as `docker buildx` would publish a multi-platform image.
pub(crate) fn layout_index(layout: &Path, tag: &str, entries: &[(&str, &str)]) {
    use sha2::Digest as _;
    let manifests: Vec<serde_json::Value> = entries
        .iter()
        .map(|(t, arch)| {
            let d = layout_descriptor(layout, t);
            serde_json::json!({
                "mediaType": d["mediaType"],
                "digest": d["digest"],
                "size": d["size"],
                "platform": {"os": "linux", "architecture": arch},
            })
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    let bytes = serde_json::to_vec(&index).expect("serialize the index");
    let hex = hex::encode(sha2::Sha256::digest(&bytes));
    std::fs::write(layout.join("blobs/sha256").join(&hex), &bytes).expect("write the index blob");
    let path = layout.join("index.json");
    let mut top: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read index.json")).expect("JSON");
    top["manifests"]
        .as_array_mut()
        .expect("manifests")
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": format!("sha256:{hex}"),
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
    std::fs::write(&path, serde_json::to_vec(&top).expect("JSON")).expect("write index.json");
}

/// A TCP relay in front of a registry that slows responses down (so a test can act while a
/// transfer is under way) and counts the response bytes relayed.
pub(crate) struct SlowProxy {
    port: u16,
    relayed: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SlowProxy {
    /// Relays 127.0.0.1:<new port> to `upstream` at about `bytes_per_sec`.
    pub(crate) fn start(upstream: String, bytes_per_sec: u64) -> SlowProxy {
        use std::io::{Read, Write};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("nonblocking accept");
        let port = listener.local_addr().expect("proxy address").port();
        let relayed = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (relayed.clone(), stop.clone());
        std::thread::spawn(move || {
            // Bounded: the proxy lives for one test; it stops when the handle drops.
            while !s.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue; // the registry is down: drop the client's connection
                };
                let (mut c_read, mut s_write) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                    let _ = s_write.shutdown(std::net::Shutdown::Write);
                });
                let (r, s) = (r.clone(), s.clone());
                let (mut server, mut client) = (server, client);
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 16 * 1024];
                    let pause = Duration::from_micros(16 * 1024 * 1_000_000 / bytes_per_sec);
                    loop {
                        let n = match server.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if s.load(Ordering::Relaxed) || client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        r.fetch_add(n as u64, Ordering::Relaxed);
                        std::thread::sleep(pause);
                    }
                    let _ = client.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        SlowProxy {
            port,
            relayed,
            stop,
        }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Response bytes relayed so far.
    pub(crate) fn relayed(&self) -> u64 {
        self.relayed.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl TestRegistry {
    /// `PUT /v2/NAME/manifests/REF` with `body` (for manifests no tool here would write), over a
    /// plain HTTP/1.1 connection. Returns the status line.
    pub(crate) fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> String {
        use std::io::{Read, Write};
        let mut conn =
            TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the registry");
        let head = format!(
            "PUT /v2/{name}/manifests/{reference} HTTP/1.1\r\nHost: {}\r\nContent-Type: {media_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.host(),
            body.len()
        );
        conn.write_all(head.as_bytes()).expect("send");
        conn.write_all(body).expect("send");
        let mut answer = String::new();
        conn.read_to_string(&mut answer).expect("read the answer");
        answer.lines().next().unwrap_or_default().to_owned()
    }
}

/// A TCP relay in front of a registry whose first `failures` HTTP requests (one per new
/// connection) get `503 Service Unavailable` instead of reaching the registry.
pub(crate) struct FlakyProxy {
    port: u16,
    refused: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FlakyProxy {
    pub(crate) fn start(upstream: String, failures: u64) -> FlakyProxy {
        use std::io::{Read, Write};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("nonblocking accept");
        let port = listener.local_addr().expect("proxy address").port();
        let refused = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (refused.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok((mut client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let (r, upstream) = (r.clone(), upstream.clone());
                // One thread per connection: a client may open a connection and send on it
                // later, which must not hold up the next accept.
                std::thread::spawn(move || {
                    let _ = client.set_nonblocking(false);
                    let mut first = vec![0u8; 64 * 1024];
                    let n = client.read(&mut first).unwrap_or(0);
                    first.truncate(n);
                    let is_http = [&b"GET "[..], b"HEAD ", b"POST ", b"PUT ", b"PATCH "]
                        .iter()
                        .any(|m| first.starts_with(m));
                    let refuse = is_http
                        && r.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                            (n < failures).then_some(n + 1)
                        })
                        .is_ok();
                    if refuse {
                        let _ = client.write_all(
                            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                        let _ = client.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    let Ok(mut server) = TcpStream::connect(&upstream) else {
                        return;
                    };
                    if server.write_all(&first).is_err() {
                        return;
                    }
                    let (mut c_read, mut s_write) = (
                        client.try_clone().expect("clone"),
                        server.try_clone().expect("clone"),
                    );
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c_read, &mut s_write);
                        let _ = s_write.shutdown(std::net::Shutdown::Write);
                    });
                    let _ = std::io::copy(&mut server, &mut client);
                    let _ = client.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        FlakyProxy {
            port,
            refused,
            stop,
        }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Requests answered with 503 so far.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
