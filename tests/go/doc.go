// Package franzgo holds the franz-go (github.com/twmb/franz-go) client tests of kraftwerk: every
// test starts its own kraftwerk process (see internal/kwtest) and checks what a Go application
// using kgo and kadm would see: produced records come back intact, a group consumer receives
// everything, and members leaving and joining a group rebalance without losing records.
package franzgo
