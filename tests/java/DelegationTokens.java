import java.io.FileInputStream;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.CreateDelegationTokenOptions;
import org.apache.kafka.clients.admin.DescribeDelegationTokenOptions;
import org.apache.kafka.clients.admin.ExpireDelegationTokenOptions;
import org.apache.kafka.clients.admin.RenewDelegationTokenOptions;
import org.apache.kafka.common.security.auth.KafkaPrincipal;
import org.apache.kafka.common.security.token.delegation.DelegationToken;
import org.apache.kafka.common.security.token.delegation.TokenInformation;

/**
 * Delegation tokens through the Java Admin client, one operation per run,
 * with the security settings of a properties file (as a tool's
 * --command-config).
 *
 * Usage: DelegationTokens <bootstrap> <client.properties> <op> [args]
 *   create [renewer,...]         prints "OK token <id> <hmac base64> <owner> <expiry> <max>"
 *   create-for <owner>           the same, for another owner (CREATE_TOKENS on that user)
 *   renew <hmac base64> <ms>     prints "OK renewed <expiry>"
 *   expire <hmac base64> <ms>    prints "OK expired <expiry>"
 *   describe [owner,...]         prints "OK described <n>" then "OK token <id> <owner> <renewers>" each
 * A refused operation prints "ERR <exception class>" and exits 0.
 */
public class DelegationTokens {
    private static List<KafkaPrincipal> principals(String list) {
        List<KafkaPrincipal> out = new ArrayList<>();
        for (String name : list.split(",")) {
            if (!name.isEmpty()) out.add(new KafkaPrincipal(KafkaPrincipal.USER_TYPE, name));
        }
        return out;
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (FileInputStream in = new FileInputStream(args[1])) {
            props.load(in);
        }
        props.put("bootstrap.servers", args[0]);
        props.put("default.api.timeout.ms", "60000");
        String op = args[2];
        try (Admin admin = Admin.create(props)) {
            switch (op) {
                case "create": {
                    CreateDelegationTokenOptions o = new CreateDelegationTokenOptions();
                    if (args.length > 3) o.renewers(principals(args[3]));
                    DelegationToken t = admin.createDelegationToken(o).delegationToken().get(60, TimeUnit.SECONDS);
                    TokenInformation i = t.tokenInfo();
                    System.out.println("OK token " + i.tokenId() + " " + t.hmacAsBase64String() + " "
                            + i.ownerAsString() + " " + i.expiryTimestamp() + " " + i.maxTimestamp());
                    break;
                }
                case "create-for": {
                    CreateDelegationTokenOptions o = new CreateDelegationTokenOptions();
                    o.owner(new KafkaPrincipal(KafkaPrincipal.USER_TYPE, args[3]));
                    DelegationToken t = admin.createDelegationToken(o).delegationToken().get(60, TimeUnit.SECONDS);
                    TokenInformation i = t.tokenInfo();
                    System.out.println("OK token " + i.tokenId() + " " + t.hmacAsBase64String() + " "
                            + i.ownerAsString() + " " + i.expiryTimestamp() + " " + i.maxTimestamp());
                    break;
                }
                case "renew": {
                    byte[] hmac = Base64.getDecoder().decode(args[3]);
                    long expiry = admin.renewDelegationToken(hmac,
                            new RenewDelegationTokenOptions().renewTimePeriodMs(Long.parseLong(args[4])))
                            .expiryTimestamp().get(60, TimeUnit.SECONDS);
                    System.out.println("OK renewed " + expiry);
                    break;
                }
                case "expire": {
                    byte[] hmac = Base64.getDecoder().decode(args[3]);
                    long expiry = admin.expireDelegationToken(hmac,
                            new ExpireDelegationTokenOptions().expiryTimePeriodMs(Long.parseLong(args[4])))
                            .expiryTimestamp().get(60, TimeUnit.SECONDS);
                    System.out.println("OK expired " + expiry);
                    break;
                }
                case "describe": {
                    DescribeDelegationTokenOptions o = new DescribeDelegationTokenOptions();
                    if (args.length > 3) o.owners(principals(args[3]));
                    List<DelegationToken> tokens = admin.describeDelegationToken(o).delegationTokens()
                            .get(60, TimeUnit.SECONDS);
                    System.out.println("OK described " + tokens.size());
                    for (DelegationToken t : tokens) {
                        TokenInformation i = t.tokenInfo();
                        StringBuilder renewers = new StringBuilder();
                        for (KafkaPrincipal p : i.renewers()) {
                            if (renewers.length() > 0) renewers.append(',');
                            renewers.append(p.toString());
                        }
                        System.out.println("OK token " + i.tokenId() + " " + i.ownerAsString() + " " + renewers);
                    }
                    break;
                }
                default:
                    throw new IllegalArgumentException("unknown op " + op);
            }
        } catch (ExecutionException e) {
            System.out.println("ERR " + e.getCause().getClass().getSimpleName());
        }
    }
}
