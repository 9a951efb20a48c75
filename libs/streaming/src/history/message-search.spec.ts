import { searchMatcher, wordsOf } from './message-search';

describe('search_messages matching', () => {
  it('splits words on anything but letters and digits, lower-cased, in any script', () => {
    expect(wordsOf('Hello, WORLD! e-mail 42x Ünïcode 日本')).toEqual([
      'hello',
      'world',
      'e',
      'mail',
      '42x',
      'ünïcode',
      '日本',
    ]);
    expect(wordsOf('  ...  ')).toEqual([]);
  });

  it('needs every word of the query as a whole word, in any order and case', () => {
    const m = searchMatcher('Cat deploy');
    expect(m('the deploy of the CAT.')).toBe(true);
    expect(m('the cat sat')).toBe(false);
    expect(m('concatenate the deploy')).toBe(false);
    expect(m('cats deploy')).toBe(false);
    expect(searchMatcher('e-mail')('send an e mail')).toBe(true);
    expect(searchMatcher('ünïcode')('ÜNÏCODE works')).toBe(true);
  });
});
