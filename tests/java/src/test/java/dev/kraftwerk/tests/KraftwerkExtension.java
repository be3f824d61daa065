package dev.kraftwerk.tests;

import java.util.List;
import java.util.Optional;

import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;
import org.junit.jupiter.api.extension.TestWatcher;

/**
 * Starts one {@link KraftwerkBroker} per test class and hands it to test methods and lifecycle
 * methods as a parameter. A test class shares its broker because starting a debug build for
 * every method would dominate the run time; each method uses its own topic and group names.
 *
 * <p>When a test fails, the broker's warnings/errors and the tail of its log are printed next
 * to the failure, because the client usually only says "timed out" or "unsupported version"
 * while the broker log names the request it refused.
 */
public final class KraftwerkExtension
        implements BeforeAllCallback, AfterAllCallback, ParameterResolver, TestWatcher {
    private static final ExtensionContext.Namespace NS =
            ExtensionContext.Namespace.create(KraftwerkExtension.class);
    private static final String KEY = "broker";

    @Override
    public void beforeAll(ExtensionContext context) throws Exception {
        context.getStore(NS).put(KEY, KraftwerkBroker.start());
    }

    @Override
    public void afterAll(ExtensionContext context) {
        KraftwerkBroker broker = context.getStore(NS).remove(KEY, KraftwerkBroker.class);
        if (broker != null) {
            broker.close();
        }
    }

    @Override
    public boolean supportsParameter(ParameterContext parameterContext, ExtensionContext extensionContext) {
        return parameterContext.getParameter().getType() == KraftwerkBroker.class;
    }

    @Override
    public Object resolveParameter(ParameterContext parameterContext, ExtensionContext extensionContext) {
        return broker(extensionContext).orElseThrow(
                () -> new IllegalStateException("no kraftwerk broker in this test class"));
    }

    @Override
    public void testFailed(ExtensionContext context, Throwable cause) {
        broker(context).ifPresent(broker -> {
            List<String> problems = broker.logProblems(40);
            StringBuilder sb = new StringBuilder();
            sb.append("\n===== kraftwerk log for failed test ")
                    .append(context.getDisplayName()).append(" (")
                    .append(broker.isAlive() ? "broker alive" : "broker DEAD").append(") =====\n");
            sb.append("-- warnings/errors (first 40):\n");
            problems.forEach(l -> sb.append(l).append('\n'));
            sb.append("-- last 30 lines:\n").append(broker.logTail(30)).append('\n');
            sb.append("===== end of kraftwerk log =====\n");
            System.err.print(sb);
        });
    }

    private static Optional<KraftwerkBroker> broker(ExtensionContext context) {
        // Stores are hierarchical: a method's store sees the value its class context put there.
        return Optional.ofNullable(context.getStore(NS).get(KEY, KraftwerkBroker.class));
    }
}
