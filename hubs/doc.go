// Package hubs runs one tunnel over a list of hubs in failover mode: one
// hub at a time, the first reachable one preferred, each hub with its own
// reconnect.Schedule, and a return to a preferred hub only after it has
// stayed reachable for a while. (Holding every hub at once, hubs: all, needs
// nothing more than one reconnect.Loop per hub; cmd does that.)
//
// Like reconnect it sits above one session: each hub's session still knows
// exactly one server chain. It imports reconnect and the standard library
// only; it knows nothing of SSH, config files or metrics.
package hubs
