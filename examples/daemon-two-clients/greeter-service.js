// The open service: any identity issued by the daemon's CA may call it.
import { serve } from 'bulkhead/service';

serve('com.example.greeter', {
  hello: (_params, ctx) => ({ greeting: `hello, ${ctx.peer.name}`, peer: ctx.peer.name }),
});
