"""blinkenlights' TUI (textual): disassembly, registers, stack, memory, the guest's
terminal, the syscall log and the threads, over a debugging Session."""

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from .session import Session
from .tui_focus import FocusApp

# IBM Code Page 437 as blink draws memory: control codes get their CP437 glyphs.
CP437_LOW = " ☺☻♥♦♣♠•◘○◙♂♀♪♫☼►◄↕‼¶§▬↨↑↓→←∟↔▲▼"


def cp437(b):
    if b < 0x20:
        return CP437_LOW[b]
    if b == 0x7F:
        return "⌂"
    if b < 0x80:
        return chr(b)
    return bytes([b]).decode("cp437")


def zoom_out(data):
    """Half as many bytes, as blink's -z draws memory: the magic kernel (1 3 3 1)/8, a
    cheap Lanczos, then every other sample."""
    n = len(data)
    out = bytearray()
    for i in range(0, n, 2):
        a, b = data[max(i - 1, 0)], data[i]
        c = data[min(i + 1, n - 1)]
        d = data[min(i + 2, n - 1)]
        out.append((a + 3 * b + 3 * c + d + 4) // 8)
    return bytes(out)


HELP = """\
 s   step one instruction        n   next (step over calls)
 f   finish (run until return)   c   continue
 S   reverse-step (back one      C   reverse-continue (back to the
     instruction)                    last breakpoint hit, or the start)
 mouse wheel over the disassembly: up goes back in time (S), down steps (s)
 b   toggle breakpoint at rip    i / ctrl+c  interrupt
 m   memory panel: follow operand / stack
 ?   this help                   q   quit (kills the program)
 :   command line (focus SET, break SYM in SET, break-exec PATH SYM,
     policy thread|process|all, help); j/k x v: process panel rows
 ENTER or ESC closes a dialog."""


class Dialog(ModalScreen):
    BINDINGS = [Binding("enter", "close", "close"), Binding("escape", "close", "close"),
                Binding("q", "close", show=False)]
    DEFAULT_CSS = """
    Dialog { align: center middle; }
    Dialog > Static { width: auto; max-width: 80%; padding: 1 2; border: heavy $error;
                      background: $panel; }
    """

    def __init__(self, title, text):
        super().__init__()
        self.title_text, self.body = title, text

    def compose(self) -> ComposeResult:
        w = Static(Text(self.body), id="dialog-body")
        w.border_title = self.title_text
        yield w

    def action_close(self):
        self.app.pop_screen()


class Panel(Static):
    DEFAULT_CSS = "Panel { border: round $primary; height: 1fr; overflow: hidden; }"

    def __init__(self, title, **kw):
        super().__init__("", **kw)
        self.border_title = title


class DisasmPanel(Panel):
    """The disassembly: as in blink, the mouse wheel moves through time over it."""

    def on_mouse_scroll_up(self, event):
        event.stop()
        self.app.action_reverse_step()

    def on_mouse_scroll_down(self, event):
        event.stop()
        self.app.action_step()


class Blinkenlights(FocusApp):
    TITLE = "blinkenlights"
    CSS = """
    Screen { layout: vertical; }
    #status { height: 1; background: $boost; }
    #top { height: 3fr; }
    #bottom { height: 2fr; }
    #disasm { width: 3fr; }
    #right { width: 2fr; }
    #regs { height: 12; }
    #threads { height: 9; }
    #memory { width: 80; }
    #term { width: 1fr; }
    #syscalls { width: 1fr; }
    """
    BINDINGS = [
        Binding("s", "step", "step"), Binding("n", "next", "next"),
        Binding("f", "finish", "finish"), Binding("c", "cont", "continue"),
        Binding("S", "reverse_step", "back"), Binding("C", "reverse_cont", "rev-cont"),
        Binding("b", "toggle_break", "break"), Binding("m", "memory_mode", "memory", show=False),
        Binding("i", "interrupt", "interrupt", show=False),
        Binding("ctrl+c", "interrupt", "interrupt", show=False, priority=True),
        Binding("question_mark", "help", "help"), Binding("q", "quit_debugger", "quit"),
    ]

    def __init__(self, argv, breakpoints=(), blinkroot_flags=(), root=None, session=None,
                 watchpoints=(), zoom=0):
        super().__init__()
        self.zoom = zoom            # -z: each memory cell stands for 2**zoom bytes
        self.argv = list(argv)
        self.initial_breakpoints = list(breakpoints)
        self.initial_watchpoints = list(watchpoints)
        self.blinkroot_flags = list(blinkroot_flags)
        self.root = root
        self.session = session
        self.busy = False
        self.memory_follow = True
        self.message = ""
        self.dialogs = []           # (title, text) of every dialog shown, for tests

    def compose(self) -> ComposeResult:
        yield Static("", id="status")
        with Horizontal(id="top"):
            yield DisasmPanel("disassembly", id="disasm")
            with Vertical(id="right"):
                yield Panel("registers", id="regs")
                yield Panel("stack", id="stack")
                yield Panel("processes / threads", id="threads")
        with Horizontal(id="bottom"):
            yield Panel("memory", id="memory")
            yield Panel("terminal", id="term")
            yield Panel("system calls", id="syscalls")
        yield Footer()

    def on_mount(self):
        if self.session is None:
            self.session = Session(self.argv, self.blinkroot_flags, self.root)
        s = self.session
        for spec in self.initial_breakpoints:
            addr = s.symbols.resolve(spec)
            if addr is None:
                self.message = f"no symbol {spec!r}"
            else:
                s.toggle_breakpoint(addr)
        for spec in self.initial_watchpoints:
            addr = s.symbols.resolve(spec)
            if addr is None or not s.add_watchpoint(addr):
                self.message = f"cannot watch {spec!r}"
        s.output_listeners.append(lambda _d: self.call_from_thread(self.draw_terminal))
        self.set_interval(0.5, self.draw_syscalls)
        self.draw()

    def on_unmount(self):
        if self.session is not None:
            self.session.close()

    # -- drawing ----------------------------------------------------------------------------
    def panel(self, selector):
        """A widget of the main screen (a dialog may be on top: the timer and the guest's
        output still draw underneath)."""
        return self.screen_stack[0].query_one(selector)

    def draw(self):
        if self.draw_while_running():
            return
        s = self.session
        state = "running…" if self.busy else ("exited" if s.stop.exited else "stopped")
        where = s.symbols.describe(s.rip) if not s.stop.exited else ""
        status = Text(f" {s.program}  {state}  {s.position_text()} {where}"
                      f"{self.focus_status()}  {self.message}")
        self.panel("#status").update(status)
        if not s.stop.exited:
            self.draw_disasm()
            self.draw_regs()
            self.draw_stack()
            self.draw_memory()
            self.draw_threads()
        self.draw_terminal()
        self.draw_syscalls()

    def draw_disasm(self):
        s = self.session
        t = Text()
        for addr, raw, text, label in s.disassembly(40):
            if label:
                t.append(f"{label}:\n", style="bold cyan")
            mark = "▶" if addr == s.rip else " "
            bp = "●" if addr in s.breakpoints else " "
            style = "reverse" if addr == s.rip else ""
            t.append(bp, style="bold red")
            t.append(f"{mark}{addr:0{s.addr_digits}x} {raw[:8].hex(' '):<24} {text}\n",
                     style=style)
        self.panel("#disasm").update(t)

    def draw_regs(self):
        s = self.session
        t = Text()
        for i, (name, v) in enumerate(s.register_view()):
            changed = s.prev_regs and s.prev_regs.get(name) != v
            t.append(f"{name:>7} ", style="dim")
            t.append(f"{v:0{s.reg_digits}x}", style="bold yellow reverse" if changed else "")
            t.append("\n" if i % 2 else "  ")
        self.panel("#regs").update(t)

    def draw_stack(self):
        s = self.session
        t = Text()
        for addr, value in s.stack(16):
            desc = s.symbols.describe(value)
            t.append(f"{addr:0{s.addr_digits}x} ", style="dim")
            t.append(f"{value:0{s.reg_digits}x}")
            if desc:
                t.append(f" {desc}", style="cyan")
            t.append("\n")
        self.panel("#stack").update(t)

    def draw_memory(self):
        s = self.session
        focus = s.memory_focus() if self.memory_follow else s.stack_pointer()
        cell = 1 << self.zoom
        start = focus & ~(16 * cell - 1)
        data = s.read(start, 16 * 8 * cell)
        for _ in range(self.zoom):
            data = zoom_out(data)
        t = Text()
        for row in range(8):
            chunk = data[16 * row: 16 * row + 16]
            if not chunk:
                break
            t.append(f"{start + 16 * cell * row:0{s.addr_digits}x} ", style="dim")
            for i, b in enumerate(chunk):
                hot = start + cell * (16 * row + i) == focus & ~(cell - 1)
                t.append(f"{b:02x}", style="reverse" if hot else "")
                t.append(" ")
            t.append("".join(cp437(b) for b in chunk) + "\n")
        panel = self.panel("#memory")
        panel.border_title = f"memory {focus:#x}" + (f" (1:{cell})" if self.zoom else "")
        panel.update(t)

    def draw_threads(self):
        if self.draw_processes():
            return
        s = self.session
        t = Text()
        try:
            tids = s.threads()
        except Exception:
            tids = []
        t.append(f"{s.pid_text}\n", style="bold")
        for tid in tids:
            cur = tid == s.stop.thread
            t.append(f"{'*' if cur else ' '} thread {tid}\n", style="bold" if cur else "")
        self.panel("#threads").update(t)

    def draw_terminal(self):
        s = self.session
        text = bytes(s.output[-8192:]).decode("utf-8", "replace").replace("\r\n", "\n")
        try:
            panel = self.panel("#term")
        except NoMatches:       # output arrived while the app closes
            return
        lines = text.split("\n")[-max(1, panel.size.height - 2):]
        panel.update(Text.from_ansi("\n".join(lines)))

    def draw_syscalls(self):
        s = self.session
        if s is None:
            return
        try:
            panel = self.panel("#syscalls")
        except NoMatches:       # the timer fired while the app closes
            return
        lines = s.syscall_log(max(1, panel.size.height - 2))
        panel.update(Text("\n".join(lines), no_wrap=True, overflow="ellipsis"))

    # -- the guest's keyboard ------------------------------------------------------------
    KEY_BYTES = {"enter": b"\r", "backspace": b"\x08", "escape": b"\x1b", "tab": b"\t",
                 "up": b"\x1b[A", "down": b"\x1b[B", "right": b"\x1b[C", "left": b"\x1b[D"}

    def on_key(self, event):
        """While the program waits for a key (real mode's int 16h), keys are its."""
        s = self.session
        if not (self.busy and s is not None and s.waiting_for_key()):
            return
        data = self.KEY_BYTES.get(event.key)
        if data is None and event.character:
            data = event.character.encode()
        if data:
            event.prevent_default()
            event.stop()
            s.send_input(data)

    # -- commands ---------------------------------------------------------------------------
    def _run(self, fn):
        """Run a (possibly long) session command off the UI thread."""
        if self.busy or self.session.stop.exited:
            return
        self.busy = True
        self.message = ""
        self.draw()

        def work():
            try:
                fn()
            except Exception as e:
                self.message = f"{type(e).__name__}: {e}"
            self.call_from_thread(self._done)

        self.run_worker(work, thread=True, exclusive=False)

    def _done(self):
        self.busy = False
        s = self.session
        msg = s.stop_message()
        if s.stop.kind == "T" and "swbreak" in s.stop.info:
            self.message = f"breakpoint {s.symbols.describe(s.rip) or hex(s.rip)}"
        if getattr(s, "at_history_start", False):
            self.message = "no more reverse-execution history (the start of the recording)"
        self.draw()
        self.after_stop()
        if msg is not None:
            self.dialogs.append(msg)
            self.push_screen(Dialog(*msg))

    def action_step(self):
        self._run(self.session.step)

    def action_next(self):
        self._run(self.session.next)

    def action_finish(self):
        self._run(self.session.finish)

    def action_cont(self):
        self._run(self.session.cont)

    def action_reverse_step(self):
        if getattr(self.session, "can_reverse", False):
            self._run(self.session.reverse_step)
        else:
            self.message = "reverse execution is not available here"
            self.draw()

    def action_reverse_cont(self):
        if getattr(self.session, "can_reverse", False):
            self._run(self.session.reverse_cont)
        else:
            self.message = "reverse execution is not available here"
            self.draw()

    def action_interrupt(self):
        if self.busy:
            self.session.interrupt()

    def action_toggle_break(self):
        if self.busy or self.session.stop.exited:
            return
        on = self.session.toggle_breakpoint(self.session.rip)
        self.message = ("breakpoint set" if on else "breakpoint cleared")
        self.draw()

    def action_memory_mode(self):
        self.memory_follow = not self.memory_follow
        self.draw()

    def action_help(self):
        self.push_screen(Dialog("help", HELP))

    def action_quit_debugger(self):
        self.exit()
