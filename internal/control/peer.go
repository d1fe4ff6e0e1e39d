package control

// PeerCred is what the kernel recorded about a unix socket's peer.
type PeerCred struct{ PID, UID, GID int }
