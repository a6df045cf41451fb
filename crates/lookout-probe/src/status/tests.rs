//! The three pages as the servers print them (Apache 2.4 prefork `?auto`, nginx 1.22 `stub_status`, PHP-FPM 8.2
//! `?json`), and what is read from them. The integration tests read the real servers' pages.

use super::*;

const APACHE: &str = "127.0.0.1\nServerVersion: Apache/2.4.62 (Debian)\nServerMPM: prefork\nServer Built: 2024-07-20T18:33:25\n\
CurrentTime: Tuesday, 01-Dec-2026 05:40:01 UTC\nServerUptimeSeconds: 61\nLoad1: 0.52\nTotal Accesses: 120\n\
Total kBytes: 40\nTotal Duration: 512\nCPUUser: .02\nCPUSystem: .01\nCPULoad: .0491803\nUptime: 61\n\
ReqPerSec: 1.96721\nBusyWorkers: 4\nIdleWorkers: 1\nProcesses: 5\nStopping: 0\nScoreboard: WWWW_\n";

const NGINX: &str =
    "Active connections: 3 \nserver accepts handled requests\n 17 17 42 \nReading: 0 Writing: 2 Waiting: 1 \n";

const FPM: &str = r#"{"pool":"www","process manager":"static","start time":1796100000,"start since":90,"accepted conn":31,"listen queue":2,"max listen queue":4,"listen queue len":4096,"idle processes":0,"active processes":2,"total processes":2,"max active processes":2,"max children reached":3,"slow requests":0}"#;

fn reading(r: &[(String, f64)], name: &str) -> Option<f64> {
    r.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}

#[test]
fn apache_workers_and_saturation_from_the_scoreboard_or_the_configured_limit() {
    let mut memory = Memory::default();
    let r = readings(parse(Server::Apache, APACHE).unwrap(), None, Timestamp(0), &mut memory);
    assert_eq!(reading(&r, "BUSY_WORKERS"), Some(4.0));
    assert_eq!(reading(&r, "IDLE_WORKERS"), Some(1.0));
    assert_eq!(reading(&r, "WORKER_LIMIT"), Some(5.0), "one scoreboard slot per worker");
    assert_eq!(reading(&r, "WORKER_SATURATION"), Some(0.8));
    assert_eq!(reading(&r, "REQUESTS_PER_SECOND"), None, "no previous reading yet");
    // `workers = 8` (MaxRequestWorkers) wins over the scoreboard; 60 more requests in 10 s: 6/s.
    let later = APACHE.replace("Total Accesses: 120", "Total Accesses: 180");
    let r = readings(parse(Server::Apache, &later).unwrap(), Some(8), Timestamp(10_000), &mut memory);
    assert_eq!(reading(&r, "WORKER_LIMIT"), Some(8.0));
    assert_eq!(reading(&r, "WORKER_SATURATION"), Some(0.5));
    assert_eq!(reading(&r, "REQUESTS_PER_SECOND"), Some(6.0));
    assert!(parse(Server::Apache, "<html>Apache Status</html>").unwrap_err().contains("?auto"));
}

#[test]
fn nginx_connections_and_request_rate() {
    let mut memory = Memory::default();
    let r = readings(parse(Server::Nginx, NGINX).unwrap(), None, Timestamp(0), &mut memory);
    assert_eq!(reading(&r, "ACTIVE_CONNECTIONS"), Some(3.0));
    assert_eq!(
        (reading(&r, "READING"), reading(&r, "WRITING"), reading(&r, "WAITING")),
        (Some(0.0), Some(2.0), Some(1.0))
    );
    assert_eq!(reading(&r, "WORKER_SATURATION"), None, "nginx's page has no worker limit");
    // nginx restarted: its counter went down, so the increase counts from zero (12 in 4 s).
    let restarted = NGINX.replace(" 17 17 42 ", " 5 5 12 ");
    let r = readings(parse(Server::Nginx, &restarted).unwrap(), None, Timestamp(4_000), &mut memory);
    assert_eq!(reading(&r, "REQUESTS_PER_SECOND"), Some(3.0));
    assert!(parse(Server::Nginx, "ok").is_err());
}

#[test]
fn php_fpm_queue_processes_and_increases_of_its_counters() {
    let mut memory = Memory::default();
    let r = readings(parse(Server::PhpFpm, FPM).unwrap(), Some(2), Timestamp(0), &mut memory);
    assert_eq!(reading(&r, "LISTEN_QUEUE"), Some(2.0));
    assert_eq!(reading(&r, "BUSY_WORKERS"), Some(2.0));
    assert_eq!(reading(&r, "WORKER_SATURATION"), Some(1.0), "pm.max_children = 2, both busy");
    assert_eq!(reading(&r, "MAX_CHILDREN_REACHED"), None, "since FPM started is no news");
    let again = FPM.replace("\"max children reached\":3", "\"max children reached\":5");
    let r = readings(parse(Server::PhpFpm, &again).unwrap(), Some(2), Timestamp(5_000), &mut memory);
    assert_eq!(reading(&r, "MAX_CHILDREN_REACHED"), Some(2.0), "reached twice since the last reading");
    assert_eq!(reading(&r, "SLOW_REQUESTS"), Some(0.0));
    // Without `workers`, FPM's page has no limit: no saturation.
    let r = readings(parse(Server::PhpFpm, FPM).unwrap(), None, Timestamp(0), &mut Memory::default());
    assert_eq!(reading(&r, "WORKER_SATURATION"), None);
    assert!(parse(Server::PhpFpm, "pool: www\n").unwrap_err().contains("JSON"));
    assert!(parse(Server::PhpFpm, "{}").is_err());
}
