package dev.kraftwerk.tests;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * One single-node kraftwerk process (broker and controller roles) on free loopback ports in a
 * fresh temp dir, started exactly the way an operator would: write server.properties, run
 * {@code kraftwerk format}, then {@code kraftwerk --config}. The tests talk to it only over the
 * Kafka protocol, so they exercise the real binary rather than any in-process shortcut.
 */
public final class KraftwerkBroker implements AutoCloseable {
    /** A debug build on a busy 2-core machine can take a while to open its listener. */
    private static final Duration READY_TIMEOUT = Duration.ofSeconds(60);
    private static final Duration STOP_TIMEOUT = Duration.ofSeconds(20);
    /** Terminal colour codes, in case the broker colours its log anyway. */
    private static final Pattern ANSI_ESCAPE = Pattern.compile("\u001b\\[[0-9;]*m");

    private final Path dir;
    private final Path log;
    private final int port;
    private final Process process;

    private KraftwerkBroker(Path dir, Path log, int port, Process process) {
        this.dir = dir;
        this.log = log;
        this.port = port;
        this.process = process;
    }

    /** Formats a new log dir and starts the broker; returns once its client port accepts connections. */
    public static KraftwerkBroker start() throws IOException, InterruptedException {
        return start(Files.createTempDirectory("kraftwerk-java-"), List.of());
    }

    /**
     * As {@link #start()}, in {@code dir} (which the broker removes on close), with {@code extra}
     * server.properties lines appended; {@code {port}} and {@code {controller_port}} in them become
     * the ports picked here. The broker is ready once {@link #bootstrap()}'s port accepts.
     */
    public static KraftwerkBroker start(Path dir, List<String> extra) throws IOException, InterruptedException {
        Path bin = binary();
        int[] ports = freePorts(2);
        int port = ports[0];
        int controllerPort = ports[1];
        Path props = dir.resolve("server.properties");
        List<String> lines = new ArrayList<>(List.of(
                "process.roles=broker,controller",
                "node.id=1",
                "controller.quorum.voters=1@127.0.0.1:" + controllerPort,
                "controller.listener.names=CONTROLLER",
                "listeners=PLAINTEXT://127.0.0.1:" + port + ",CONTROLLER://127.0.0.1:" + controllerPort,
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "log.dirs=" + dir.resolve("data"),
                "offsets.topic.replication.factor=1",
                "group.initial.rebalance.delay.ms=0"));
        for (String line : extra) {
            lines.add(line.replace("{port}", Integer.toString(port))
                    .replace("{controller_port}", Integer.toString(controllerPort)));
        }
        lines.add("");
        Files.writeString(props, String.join("\n", lines), StandardCharsets.UTF_8);

        String clusterId = runToString(List.of(bin.toString(), "random-uuid")).trim();
        if (clusterId.isEmpty()) {
            throw new IllegalStateException(bin + " random-uuid printed nothing");
        }
        // "--cluster-id=<id>": a base64 id may start with '-', which a separate argument would
        // turn into an unknown flag.
        runToString(List.of(bin.toString(), "format", "--config", props.toString(),
                "--cluster-id=" + clusterId));

        Path log = dir.resolve("broker.log");
        ProcessBuilder pb = new ProcessBuilder(bin.toString(), "--config", props.toString())
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                .redirectError(ProcessBuilder.Redirect.appendTo(log.toFile()));
        if (System.getenv("RUST_LOG") == null) {
            pb.environment().put("RUST_LOG", "info");
        }
        // Plain text: the log is read by people and grepped by logProblems().
        pb.environment().put("NO_COLOR", "1");
        Process process = pb.start();
        KraftwerkBroker broker = new KraftwerkBroker(dir, log, port, process);
        try {
            broker.awaitListening();
        } catch (RuntimeException | InterruptedException e) {
            broker.close();
            throw e;
        }
        return broker;
    }

    /** {@code host:port} for {@code bootstrap.servers}. */
    public String bootstrap() {
        return "127.0.0.1:" + port;
    }

    public Path logFile() {
        return log;
    }

    /**
     * The last {@code maxLines} lines of the broker's log, so a failing test can show which
     * request the broker refused instead of only the client's side of the story.
     */
    public String logTail(int maxLines) {
        try {
            List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8).stream()
                    .map(KraftwerkBroker::plain).toList();
            int from = Math.max(0, lines.size() - maxLines);
            return String.join("\n", lines.subList(from, lines.size()));
        } catch (IOException e) {
            return "(could not read " + log + ": " + e + ")";
        }
    }

    /** Log lines that look like refusals or errors (unsupported api, error codes, panics). */
    public List<String> logProblems(int max) {
        List<String> out = new ArrayList<>();
        try (Stream<String> lines = Files.lines(log, StandardCharsets.UTF_8)) {
            lines.map(KraftwerkBroker::plain).filter(l -> {
                String s = l.toLowerCase();
                return s.contains("error") || s.contains("warn") || s.contains("unsupported")
                        || s.contains("refus") || s.contains("panic") || s.contains("unknown api");
            }).limit(max).forEach(out::add);
        } catch (IOException | UncheckedIOException e) {
            out.add("(could not read " + log + ": " + e + ")");
        }
        return out;
    }

    private static String plain(String line) {
        return ANSI_ESCAPE.matcher(line).replaceAll("");
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    private void awaitListening() throws InterruptedException {
        Instant deadline = Instant.now().plus(READY_TIMEOUT);
        while (Instant.now().isBefore(deadline)) {
            if (!process.isAlive()) {
                throw new IllegalStateException("kraftwerk exited with " + process.exitValue()
                        + " before listening; log:\n" + logTail(60));
            }
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 500);
                return;
            } catch (IOException notYet) {
                Thread.sleep(100);
            }
        }
        throw new IllegalStateException("kraftwerk did not listen on " + bootstrap() + " within "
                + READY_TIMEOUT + "; log:\n" + logTail(60));
    }

    /** SIGTERM, then SIGKILL if the broker does not stop in time; removes the temp dir. */
    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(STOP_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(STOP_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
        if (System.getenv("KRAFTWERK_KEEP_TEST_DIRS") == null) {
            deleteRecursively(dir);
        }
    }

    /**
     * $KRAFTWERK_BIN, else target/debug/kraftwerk of the enclosing cargo workspace (found by
     * walking up from the working directory, which is tests/java under Maven).
     */
    static Path binary() {
        String env = System.getenv("KRAFTWERK_BIN");
        if (env != null && !env.isBlank()) {
            Path p = Paths.get(env).toAbsolutePath();
            if (!Files.isExecutable(p)) {
                throw new IllegalStateException("KRAFTWERK_BIN=" + env + " is not an executable file");
            }
            return p;
        }
        for (Path d = Paths.get("").toAbsolutePath(); d != null; d = d.getParent()) {
            Path candidate = d.resolve("target").resolve("debug").resolve("kraftwerk");
            if (Files.isExecutable(candidate)) {
                return candidate;
            }
        }
        throw new IllegalStateException(
                "no kraftwerk binary: build it (cargo build -p kraftwerk-broker) or set KRAFTWERK_BIN");
    }

    static int[] freePorts(int n) throws IOException {
        ServerSocket[] sockets = new ServerSocket[n];
        int[] ports = new int[n];
        try {
            for (int i = 0; i < n; i++) {
                sockets[i] = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress());
                ports[i] = sockets[i].getLocalPort();
            }
        } finally {
            for (ServerSocket s : sockets) {
                if (s != null) {
                    s.close();
                }
            }
        }
        return ports;
    }

    /** Runs a short kraftwerk subcommand; returns its stdout (stderr only goes into errors). */
    private static String runToString(List<String> command) throws IOException, InterruptedException {
        Path err = Files.createTempFile("kraftwerk-cmd-", ".stderr");
        try {
            Process p = new ProcessBuilder(command)
                    .redirectError(ProcessBuilder.Redirect.to(err.toFile()))
                    .start();
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IllegalStateException(command + " did not finish within 60 s");
            }
            String text = new String(out, StandardCharsets.UTF_8);
            if (p.exitValue() != 0) {
                throw new IllegalStateException(command + " exited with " + p.exitValue() + ":\n"
                        + text + Files.readString(err, StandardCharsets.UTF_8));
            }
            return text;
        } finally {
            Files.deleteIfExists(err);
        }
    }

    private static void deleteRecursively(Path root) {
        try (Stream<Path> walk = Files.walk(root)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException | UncheckedIOException ignored) {
            // Best effort: a leftover temp dir is harmless and must not mask the test result.
        }
    }
}
