//! The cluster across hosts: the scheduler and each executor in its own
//! network namespace, reached over virtual Ethernet through a switch (a
//! bridge in a namespace of its own, whose empty firewall forwards
//! everything whatever the machine's rules). The test process is the
//! client, on the machine's own network stack. Creating namespaces needs
//! root: elsewhere the test says so and skips.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::*;

/// Namespaces wired to one switch; removed on drop.
struct Network {
    /// `10.213.N.` : hosts are `.2`, `.3`, ...; this process is `.1`.
    prefix: String,
    switch: String,
    hosts: Vec<String>,
    /// This process's end of its link to the switch.
    uplink: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Network {
    /// `hosts` namespaces, or why they cannot be made here.
    fn create(hosts: usize) -> Result<Network, String> {
        let id = std::process::id();
        let tag = format!("ad{}", id % 100_000);
        let mut network = Network {
            prefix: format!("10.213.{}.", id % 250),
            switch: format!("{tag}sw"),
            hosts: Vec::new(),
            uplink: format!("{tag}up"),
        };
        ip(&["netns", "add", &network.switch])?;
        let sw = network.switch.clone();
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        // This process's link: one end here, one on the switch.
        let uplink = network.uplink.clone();
        ip(&[
            "link", "add", &uplink, "type", "veth", "peer", "name", "p0", "netns", &sw,
        ])?;
        ip(&["-n", &sw, "link", "set", "p0", "master", "br0", "up"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}1/24", network.prefix),
            "dev",
            &uplink,
        ])?;
        ip(&["link", "set", &uplink, "up"])?;
        for i in 0..hosts {
            let host = format!("{tag}h{i}");
            ip(&["netns", "add", &host])?;
            network.hosts.push(host.clone());
            let port = format!("p{}", i + 1);
            ip(&[
                "-n", &host, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns",
                &sw,
            ])?;
            ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"])?;
            let address = format!("{}/24", network.address(i));
            ip(&["-n", &host, "addr", "add", &address, "dev", "eth0"])?;
            ip(&["-n", &host, "link", "set", "eth0", "up"])?;
            ip(&["-n", &host, "link", "set", "lo", "up"])?;
        }
        Ok(network)
    }

    /// The address of host `i`.
    fn address(&self, i: usize) -> String {
        format!("{}{}", self.prefix, i + 2)
    }

    /// `aduana ARGS` in host `i`'s namespace, its stderr to `log`.
    fn spawn(&self, i: usize, args: &[&str], log: &Path) -> Child {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.hosts[i],
                env!("CARGO_BIN_EXE_aduana"),
            ])
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.uplink]);
        for ns in self.hosts.iter().chain([&self.switch]) {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Processes killed on drop, so a failing test leaves none behind.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_for(address: &str, what: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let target: std::net::SocketAddr = address.parse().unwrap();
    while std::net::TcpStream::connect_timeout(&target, Duration::from_secs(1)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{what} not reachable at {address}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The published risk tables, as CSV, read in-process.
fn published(root: &str) -> [String; 2] {
    [
        "SELECT * FROM risk.declaration_scores ORDER BY declaration_id, item_no",
        "SELECT * FROM risk.trader_risk ORDER BY year, month, importer_id",
    ]
    .map(|sql| {
        let out = run(aduana().args(["sql", "-w", root, "--format", "csv", "-c", sql]));
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    })
}

fn assert_same_tables(cluster: &[String; 2], local: &[String; 2]) {
    let first_difference = cluster[0]
        .lines()
        .zip(local[0].lines())
        .find(|(a, b)| a != b);
    assert!(
        first_difference.is_none() && cluster[0].lines().count() == local[0].lines().count(),
        "scores differ from the in-process refresh: {first_difference:?}"
    );
    assert_eq!(
        cluster[1], local[1],
        "trader risk differs from the in-process refresh"
    );
}

/// A refresh through a scheduler and two executors on three "hosts"
/// publishes what an in-process refresh does; an executor killed in the
/// middle of a refresh leaves the published tables intact whatever the
/// run's outcome, and the next run completes.
#[test]
fn refresh_across_hosts_survives_a_killed_executor() {
    let network = match Network::create(3) {
        Ok(network) => network,
        Err(why) => {
            eprintln!(
                "skipped: this test puts the cluster in network namespaces, which needs root \
                 ({why})"
            );
            return;
        }
    };
    let wh = generate(20_000, 3);
    let root = wh.path().display().to_string();
    // One model for both refreshes (a build names its version by the time).
    let out = run(aduana().args(["model", "build", "-w", &root]));
    assert!(out.status.success(), "{}", stderr(&out));
    // The in-process answer, from a copy.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(wh.path(), copy.path());
    let copy_root = copy.path().display().to_string();
    let out = run(aduana().args(["refresh", "-w", &copy_root]));
    assert!(out.status.success(), "{}", stderr(&out));
    let local = published(&copy_root);

    let logs = tempfile::tempdir().unwrap();
    let scheduler_address = format!("{}:50050", network.address(0));
    let scheduler_log = logs.path().join("scheduler.log");
    let mut scheduler = network.spawn(
        0,
        &[
            "scheduler",
            "-w",
            &root,
            "--bind",
            &scheduler_address,
            "--executor-timeout",
            "15",
        ],
        &scheduler_log,
    );
    wait_for(
        &scheduler_address,
        "the scheduler",
        &mut scheduler,
        &scheduler_log,
    );
    let start_executor = |i: usize| {
        let host = network.address(i);
        let log = logs.path().join(format!("executor-{i}.log"));
        let work = logs.path().join(format!("shuffle-{i}"));
        std::fs::create_dir_all(&work).unwrap();
        let mut child = network.spawn(
            i,
            &[
                "executor",
                "-w",
                &root,
                "--scheduler",
                &scheduler_address,
                "--bind-host",
                &host,
                "--port",
                "50051",
                "--grpc-port",
                "50052",
                "--concurrent-tasks",
                "1",
                "--work-dir",
                work.to_str().unwrap(),
            ],
            &log,
        );
        wait_for(&format!("{host}:50051"), "an executor", &mut child, &log);
        child
    };
    // Index 0 the scheduler, then the executors on hosts 1 and 2.
    let mut processes = Processes(vec![scheduler, start_executor(1), start_executor(2)]);
    // Executors register on their first poll of the scheduler.
    std::thread::sleep(Duration::from_millis(1_000));
    let url = format!("df://{scheduler_address}");

    // 1. A whole refresh through the hosts.
    let out = run(aduana().args(["refresh", "-w", &root, "--cluster", &url]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_tables(&published(&root), &local);
    let snapshot = std::fs::read(wh.path().join("risk/_published.json")).unwrap();

    // 2. Every month rescored, one executor killed once scoring started.
    let rescore_all = [
        "refresh",
        "-w",
        &root,
        "--cluster",
        &url,
        "--since",
        "2000-01-01",
    ];
    let mut refresh = aduana()
        .args(rescore_all)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel();
    let err = refresh.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut said = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut killed = false;
    while Instant::now() < deadline {
        match received.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                if !killed && line.contains("step=plan") {
                    processes.0[1].kill().unwrap();
                    processes.0[1].wait().unwrap();
                    killed = true;
                }
                said.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = refresh.wait().unwrap();
    let said = said.join("\n");
    assert!(killed, "the refresh never reached scoring: {said}");
    eprintln!(
        "an executor killed mid-refresh: the run {}",
        if status.success() {
            "completed (its tasks ran again on the other executor)"
        } else {
            "failed and left the publication as it was"
        }
    );
    if status.success() {
        // Ballista ran the lost tasks again on the other executor.
        assert_same_tables(&published(&root), &local);
    } else {
        // Failed: said so, and the publication is the one before.
        assert!(said.contains("error"), "{said}");
        assert_eq!(
            std::fs::read(wh.path().join("risk/_published.json")).unwrap(),
            snapshot,
            "a failed run changed the publication"
        );
        assert_same_tables(&published(&root), &local);
    }

    // 3. The executor back: the next run completes.
    processes.0[1] = start_executor(1);
    std::thread::sleep(Duration::from_millis(1_000));
    let out = run(aduana().args(rescore_all));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_tables(&published(&root), &local);
}
