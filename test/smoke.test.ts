import t from 'tap';
import { Broker } from 'bulkhead';
import { FIXTURES } from './helpers.js';

t.test('echo round trip', async (t) => {
  const broker = new Broker({ root: FIXTURES });
  t.teardown(() => broker.close());
  broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' });
  const echo = broker.connect('echo');
  t.equal(broker.status('echo').state, 'idle');
  const r = await echo.call('echo', { text: 'hi' });
  t.equal(r.text, 'hi');
  t.equal(broker.status('echo').state, 'running');
});
