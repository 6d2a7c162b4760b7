/** Commands printed for the user to paste (resume, evaluate): each argument quoted for a POSIX shell where it needs it. */

/** `arg` as one shell word: as is when it has no special characters, else in single quotes. */
export const shellQuote = (arg: string): string => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);

/** A command line of `words`, each quoted as needed. */
export const shellCommand = (words: string[]): string => words.map(shellQuote).join(' ');
