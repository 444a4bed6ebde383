package resp

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/object"
)

// cannedBackend answers every get with one fixed value and every write
// with OK, at no cost: a benchmark over it measures the RESP server alone
// (and the loopback socket).
type cannedBackend struct{ value []byte }

func (b cannedBackend) Do(_ context.Context, req node.Request) node.Reply {
	if req.Op == node.OpGet {
		return node.Reply{ID: req.ID, Code: node.CodeOK, Siblings: []object.Sibling{{Value: b.value}}}
	}
	return node.Reply{ID: req.ID, Code: node.CodeOK}
}

// DoBatch makes the backend a Batcher, as a node is.
func (b cannedBackend) DoBatch(ctx context.Context, reqs []node.Request, reps []node.Reply) {
	for i := range reqs {
		reps[i] = b.Do(ctx, reqs[i])
	}
}

// BenchmarkServer sends GETs and SETs over one connection, one command at
// a time (-P 1) or 16 per round trip (-P 16), and reads the replies: the
// allocations per op are the server's (the client reuses its buffers).
//
//	go test -run '^$' -bench BenchmarkServer -benchmem ./resp/
func BenchmarkServer(b *testing.B) {
	value := make([]byte, 100)
	for i := range value {
		value[i] = 'v'
	}
	addr := serve(b, cannedBackend{value: value}, Config{})
	for _, cmd := range []string{"get", "set"} {
		for _, pipeline := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/P%d", cmd, pipeline), func(b *testing.B) {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				defer conn.Close()
				var one []byte
				if cmd == "get" {
					one = []byte("*2\r\n$3\r\nGET\r\n$16\r\nkey:000000001234\r\n")
				} else {
					one = fmt.Appendf(nil, "*3\r\n$3\r\nSET\r\n$16\r\nkey:000000001234\r\n$%d\r\n%s\r\n", len(value), value)
				}
				var round []byte
				for range pipeline {
					round = append(round, one...)
				}
				r := bufio.NewReaderSize(conn, 64<<10)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i += pipeline {
					if _, err := conn.Write(round); err != nil {
						b.Fatal(err)
					}
					for range pipeline {
						if err := skipReply(r); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

// skipReply reads one reply: a status, an error or a bulk string.
func skipReply(r *bufio.Reader) error {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return err
	}
	switch line[0] {
	case '+', ':':
		return nil
	case '$':
		n, err := strconv.Atoi(string(bytes.TrimRight(line[1:], "\r\n")))
		if err != nil {
			return err
		}
		if n < 0 {
			return nil
		}
		_, err = r.Discard(n + 2)
		return err
	}
	return fmt.Errorf("unexpected reply %q", line)
}
