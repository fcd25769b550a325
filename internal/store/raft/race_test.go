//go:build race

package raft

// raceEnabled: the race detector slows everything several times, so fewer
// clusters are built ahead at once.
const raceEnabled = true
