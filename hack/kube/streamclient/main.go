// Command streamclient drives a kubelet's /exec, /attach and /portForward endpoints the way kubectl
// does through an API server: with client-go's own executors and port-forward dialers (plus a plain
// WebSocket port-forward client, which client-go does not have). The kubelet tests run it against a
// standalone kubelet on pycrid; hack/kube/build.sh builds it with the release's client-go.
//
// Usage:
//
//	streamclient exec|attach [-transport spdy|websocket] [-protocols P,...] [-sizes-fd N] URL
//	    The streams follow the URL's query, as the kubelet reads it: input=1 copies our stdin,
//	    output=1 and error=1 copy to our stdout and stderr, tty=1 asks for a terminal, whose sizes
//	    ("ROWS COLUMNS" lines) are read from descriptor N. -protocols narrows the WebSocket
//	    subprotocols offered (client-go offers v5.channel.k8s.io alone). Exit status: the command's
//	    exit code when the server reports one (a NonZeroExitCode status), 0 on success or when
//	    SIGTERM ends the stream, 125 on any other failure.
//
//	streamclient portforward [-transport spdy|tunnel|websocket] URL REMOTE_PORT
//	    Listens on a free loopback port and forwards each connection to REMOTE_PORT in the pod:
//	    "spdy" is SPDY/3.1, "tunnel" is SPDY/3.1 tunnelled in WebSocket (kubectl's default),
//	    "websocket" the v4.channel.k8s.io channel framing with a ?port= query. Prints
//	    "LOCAL_PORT REMOTE_PORT" once listening, and runs until SIGTERM.
//
// The kubelet's serving certificate is self-signed and not verified: the tests use loopback only.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	utilexec "k8s.io/client-go/util/exec"
)

const otherFailure = 125

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: streamclient exec|attach|portforward [flags] URL [REMOTE_PORT]"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	flags := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	transport := flags.String("transport", "spdy", "the client's transport")
	protocols := flags.String("protocols", "", "WebSocket subprotocols to offer, comma-separated")
	sizesFD := flags.Int("sizes-fd", -1, "a descriptor to read terminal sizes from")
	_ = flags.Parse(os.Args[2:])
	switch os.Args[1] {
	case "exec", "attach":
		if flags.NArg() != 1 {
			fail(errors.New("exec and attach take one URL"))
		}
		os.Exit(stream(ctx, *transport, *protocols, *sizesFD, flags.Arg(0)))
	case "portforward":
		if flags.NArg() != 2 {
			fail(errors.New("portforward takes a URL and a remote port"))
		}
		if err := forward(ctx, *transport, flags.Arg(0), flags.Arg(1)); err != nil {
			fail(err)
		}
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "streamclient:", err)
	os.Exit(otherFailure)
}

// config is what kubectl would have from its kubeconfig: the server, and no CA to verify against.
func config(target *url.URL) *rest.Config {
	return &rest.Config{Host: target.Scheme + "://" + target.Host, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
}

// stream runs one exec or attach session and returns the exit status for it.
func stream(ctx context.Context, transport, protocols string, sizesFD int, rawURL string) int {
	target, err := url.Parse(rawURL)
	if err != nil {
		fail(err)
	}
	var executor remotecommand.Executor
	switch transport {
	case "spdy": // kubectl's method for SPDY
		executor, err = remotecommand.NewSPDYExecutor(config(target), "POST", target)
	case "websocket":
		if protocols == "" {
			executor, err = remotecommand.NewWebSocketExecutor(config(target), "GET", rawURL)
		} else {
			executor, err = remotecommand.NewWebSocketExecutorForProtocols(config(target), "GET", rawURL,
				strings.Split(protocols, ",")...)
		}
	default:
		err = fmt.Errorf("unknown transport %q", transport)
	}
	if err != nil {
		fail(err)
	}
	query := target.Query()
	options := remotecommand.StreamOptions{Tty: query.Get("tty") == "1"}
	if query.Get("input") == "1" {
		options.Stdin = os.Stdin
	}
	if query.Get("output") == "1" {
		options.Stdout = os.Stdout
	}
	if query.Get("error") == "1" {
		options.Stderr = os.Stderr
	}
	if sizesFD >= 0 {
		options.TerminalSizeQueue = &sizes{bufio.NewScanner(os.NewFile(uintptr(sizesFD), "sizes"))}
	}
	err = executor.StreamWithContext(ctx, options)
	var exit utilexec.CodeExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		fmt.Fprintf(os.Stderr, "streamclient: command exited with code %d\n", exit.Code)
		return exit.Code
	case ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "streamclient: stopped")
		return 0
	default:
		fmt.Fprintln(os.Stderr, "streamclient:", err)
		return otherFailure
	}
}

// sizes is a TerminalSizeQueue fed by "ROWS COLUMNS" lines; it ends with its input.
type sizes struct{ lines *bufio.Scanner }

func (s *sizes) Next() *remotecommand.TerminalSize {
	for s.lines.Scan() {
		var rows, columns uint16
		if _, err := fmt.Sscan(s.lines.Text(), &rows, &columns); err == nil {
			return &remotecommand.TerminalSize{Width: columns, Height: rows}
		}
	}
	return nil
}

// forward serves port-forwarding until ctx ends.
func forward(ctx context.Context, transport, rawURL, remote string) error {
	target, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	port, err := strconv.ParseUint(remote, 10, 16)
	if err != nil {
		return fmt.Errorf("remote port %q: %v", remote, err)
	}
	if transport == "websocket" {
		return forwardChannels(ctx, target, uint16(port))
	}
	var dialer httpstream.Dialer
	switch transport {
	case "spdy": // as kubectl port-forward dials without WebSockets
		roundTripper, upgrader, err := spdy.RoundTripperFor(config(target))
		if err != nil {
			return err
		}
		dialer = spdy.NewDialer(upgrader, &http.Client{Transport: roundTripper}, "POST", target)
	case "tunnel": // kubectl's default since 1.31
		if dialer, err = portforward.NewSPDYOverWebsocketDialer(target, config(target)); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown transport %q", transport)
	}
	ready := make(chan struct{})
	// Its progress lines ("Forwarding from", "Handling connection for") are not wanted; errors are.
	forwarder, err := portforward.New(dialer, []string{"0:" + remote}, ctx.Done(), ready, io.Discard, os.Stderr)
	if err != nil {
		return err
	}
	go func() {
		<-ready
		if ports, err := forwarder.GetPorts(); err == nil {
			fmt.Printf("%d %d\n", ports[0].Local, ports[0].Remote)
		}
	}()
	return forwarder.ForwardPorts()
}

// forwardChannels forwards each local connection over a WebSocket of its own, framed as the
// v4.channel.k8s.io port-forward protocol: channel 0 carries the data both ways and channel 1 the
// server's errors; the server first sends the port number (2 bytes, little-endian) on each.
func forwardChannels(ctx context.Context, target *url.URL, port uint16) error {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); listener.Close() }()
	fmt.Printf("%d %d\n", listener.Addr().(*net.TCPAddr).Port, port)
	withPort := *target
	query := withPort.Query()
	query.Set("port", strconv.Itoa(int(port))) // the kubelet reads "port"
	withPort.RawQuery = query.Encode()
	withPort.Scheme = map[string]string{"https": "wss", "http": "ws"}[target.Scheme]
	dialer := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		Subprotocols: []string{"v4.channel.k8s.io"}}
	for {
		local, err := listener.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go func() {
			defer local.Close()
			if err := pipeChannels(ctx, &dialer, withPort.String(), port, local); err != nil {
				fmt.Fprintf(os.Stderr, "streamclient: forwarding to port %d: %v\n", port, err)
			}
		}()
	}
}

func pipeChannels(ctx context.Context, dialer *websocket.Dialer, wsURL string, port uint16, local net.Conn) error {
	conn, response, err := dialer.DialContext(ctx, wsURL, nil)
	if err != nil {
		if response != nil {
			body, _ := io.ReadAll(io.LimitReader(response.Body, 4096))
			return fmt.Errorf("%v: %s", err, body)
		}
		return err
	}
	defer conn.Close()
	// Our end of the protocol's close handshake: once the local side is done, a close frame; the
	// server answers it (or the kubelet, proxying, just hangs up), and that is the end.
	closing := make(chan struct{})
	go func() { // local → pod; the protocol has no half-close, so the local end closes it all
		buffer := make([]byte, 32*1024)
		for {
			n, err := local.Read(buffer)
			if n > 0 {
				if conn.WriteMessage(websocket.BinaryMessage, append([]byte{0}, buffer[:n]...)) != nil {
					return
				}
			}
			if err != nil {
				close(closing)
				deadline := time.Now().Add(10 * time.Second)
				_ = conn.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline)
				_ = conn.SetReadDeadline(deadline)
				return
			}
		}
	}()
	ended := func(err error) error { // nil once we closed, or when the server closed normally
		select {
		case <-closing:
			return nil
		default:
		}
		if websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			return nil
		}
		return err
	}
	prefixed := [2]bool{}
	for {
		_, message, err := conn.ReadMessage()
		if err != nil {
			return ended(err)
		}
		if len(message) == 0 || message[0] > 1 {
			return fmt.Errorf("a message on unexpected channel: %q", message)
		}
		channel, data := message[0], message[1:]
		if !prefixed[channel] {
			if len(data) < 2 || binary.LittleEndian.Uint16(data) != port {
				return fmt.Errorf("channel %d did not start with port %d: %q", channel, port, data)
			}
			prefixed[channel], data = true, data[2:]
		}
		if channel == 1 && len(data) > 0 {
			return fmt.Errorf("error from the server: %s", data)
		}
		if _, err := local.Write(data); err != nil {
			return ended(err)
		}
	}
}
