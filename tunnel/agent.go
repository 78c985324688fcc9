package tunnel

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// AgentFromEnv is the identity_agent value that means "the socket named by
// $SSH_AUTH_SOCK", as OpenSSH's IdentityAgent SSH_AUTH_SOCK.
const AgentFromEnv = "SSH_AUTH_SOCK"

// agentSocket resolves the configured socket at connect time, so a new
// agent (a new $SSH_AUTH_SOCK) is picked up by the next connect.
func agentSocket(configured string) (string, error) {
	if configured != AgentFromEnv {
		return configured, nil
	}
	p := os.Getenv(AgentFromEnv)
	if p == "" {
		return "", fmt.Errorf("identity_agent is SSH_AUTH_SOCK, but SSH_AUTH_SOCK is not set in rtunnel's environment")
	}
	return p, nil
}

// agentSigners connects to the ssh-agent and lists its keys and
// certificates. The connection stays open for the signatures of the
// handshake; the caller closes it. Every failure is an AgentError, which is
// retried: an agent restarts, its socket comes back.
func agentSigners(ctx context.Context, configured string, timeout time.Duration) ([]ssh.Signer, net.Conn, error) {
	path, err := agentSocket(configured)
	if err != nil {
		return nil, nil, &AgentError{Socket: configured, Err: err}
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "unix", path)
	if err != nil {
		return nil, nil, &AgentError{Socket: path, Err: err}
	}
	// The agent is local, but a hung one must not hold the connect.
	_ = conn.SetDeadline(time.Now().Add(timeout))
	signers, err := agent.NewClient(conn).Signers()
	if err != nil {
		conn.Close()
		return nil, nil, &AgentError{Socket: path, Err: err}
	}
	if len(signers) == 0 {
		conn.Close()
		return nil, nil, &AgentError{Socket: path, Err: fmt.Errorf("the agent holds no keys (add one with ssh-add)")}
	}
	return signers, conn, nil
}
