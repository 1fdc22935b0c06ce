// Adds (or updates) one SCRAM-SHA-512 user, then proves it can log in over SASL_SSL.
// Run with Java's source launcher:
//   java -cp "<kafka libs>/*" ScramUser.java PLAINTEXT_BOOTSTRAP SASL_SSL_BOOTSTRAP USER PASSWORD_FILE CA_FILE
// Why Java: Kafka 4.x moved ConfigCommand (kafka-configs --add-config SCRAM-SHA-512=...) out of the
// broker jar into kafka-tools, which we do not fetch; the Admin API call it makes is all we need.
// And kcat cannot check the login: Debian's librdkafka (2.0.2) fails SCRAM against Kafka 4 brokers
// (edenhill/kcat#462, fixed in librdkafka 2.6.1).
// The password is read from a file so it never shows in the process list.
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;

public class ScramUser {
    public static void main(String[] args) throws Exception {
        String plain = args[0], sasl = args[1], user = args[2], ca = args[4];
        String password = Files.readString(Path.of(args[3])).strip();
        try (Admin admin = Admin.create(Map.of("bootstrap.servers", plain))) {
            ScramCredentialInfo info = new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192);
            admin.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion(user, info, password)))
                 .all().get(30, TimeUnit.SECONDS);
        }
        Map<String, Object> client = Map.of(
            "bootstrap.servers", sasl, "security.protocol", "SASL_SSL", "sasl.mechanism", "SCRAM-SHA-512",
            "sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\""
                + user + "\" password=\"" + password + "\";",
            "ssl.truststore.type", "PEM", "ssl.truststore.location", ca);
        // The credential reaches the broker through the metadata log, a moment after the upsert.
        Exception last = null;
        for (int attempt = 0; attempt < 30; attempt++) {
            try (Admin admin = Admin.create(client)) {
                admin.describeCluster().nodes().get(5, TimeUnit.SECONDS);
                return;
            } catch (Exception e) {
                last = e;
                Thread.sleep(1000);
            }
        }
        throw last;
    }
}
