// Package reliability holds end-to-end reliability and security tests for
// zenoload (issue 7): master loss and restart, worker loss, web-UI stop/start
// cycles, graceful stop, target faults, quota, bad input, a garbage-sending
// fake master, and secrets in every output. The tests start real Locust
// masters (see internal/locusttest), real zeno-worker processes and an
// in-process fake Zeno API, all on loopback.
//
// They are skipped under -short. Run them with
//
//	go test -count=1 -v ./e2e/reliability/
//
// (about 4 minutes on two cores). The soak test is scripts/soak.sh.
package reliability
