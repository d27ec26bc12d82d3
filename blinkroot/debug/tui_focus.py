"""blinkenlights' process tree: the process panel, focus sets, the command line and the
stop policy (the Blinkenlights app derives from FocusApp; the work is session.py's and
focus.py's).

Keys: `:` (or `/`) opens the command line (`focus i2`, `break main in i2`, `break-exec
PATH SYM`, `policy process`, ... `help`); in the process panel `j`/`k` move the row
cursor, `x` marks or unmarks a row (the marked rows are the focus set), `v` shows the
row's process or thread.
"""

from rich.text import Text
from textual.app import App
from textual.binding import Binding
from textual.widgets import Input

from .focus import FocusError


def _dialog():
    from .tui import Dialog
    return Dialog


class FocusApp(App):
    BINDINGS = [
        Binding("colon", "command_line", ":command", show=True),
        Binding("slash", "command_line", "command", show=False),
        Binding("j", "row(1)", "row down", show=False),
        Binding("k", "row(-1)", "row up", show=False),
        Binding("x", "mark_row", "mark row", show=False),
        Binding("v", "view_row", "view row", show=False),
    ]

    row_cursor = 0
    marked_rows = ()

    def multiprocess(self):
        return hasattr(self.session, "inferiors")

    # -- drawing -------------------------------------------------------------------------------
    def focus_status(self):
        if not self.multiprocess():
            return ""
        s = self.session
        live = sum(1 for i in s.inferiors if i.alive)
        return f"  [i{s.cur.num}/{live}] focus {s.focus}  policy {s.policy}"

    def draw_while_running(self):
        """While the policy keeps some threads running, the stub cannot be asked for
        anything: only the status and the process panel are drawn (from what is known)."""
        s = self.session
        if not (self.multiprocess() and s.bg_running):
            return False
        running = sum(1 for i in s.inferiors for t in i.live_threads() if t.state == "running")
        self.panel("#status").update(Text(
            f" {s.program}  stopped (i{s.cur.num}), {running} running{self.focus_status()}"
            f"  {self.message}"))
        self.draw_processes()
        self.draw_terminal()
        return True

    def process_row_keys(self):
        return [f"i{inf.num}" if th is None else f"i{inf.num}.t{th.num}"
                for inf, th in self.session.process_rows()]

    def draw_processes(self):
        """The process panel: every process and thread of the session, with its state."""
        if not self.multiprocess():
            return False
        s = self.session
        rows = s.process_rows()
        self.row_cursor = max(0, min(self.row_cursor, len(rows) - 1))
        focus = s.focus_keys() if not s.stop.exited else set()
        t = Text()
        for n, (inf, th) in enumerate(rows):
            key = f"i{inf.num}" if th is None else f"i{inf.num}.t{th.num}"
            cursor = ">" if n == self.row_cursor else " "
            mark = "+" if key in self.marked_rows else " "
            if th is None:
                prog = inf.program.rsplit("/", 1)[-1]
                parent = f" from i{inf.parent}" if inf.parent else ""
                line = f"{cursor}{mark}i{inf.num} pid {inf.pid} {prog}{parent}: {inf.summary()}"
                style = "bold" if inf is s.cur else ("dim" if not inf.alive else "")
            else:
                cur = inf is s.cur and th.tid == s.cur_tid
                infocus = "f" if (inf.pid, th.tid) in focus else " "
                where = f" {th.where}" if th.state == "stopped" and th.where else ""
                line = (f"{cursor}{mark} {'*' if cur else ' '}{infocus}t{th.num} tid {th.tid} "
                        f"{th.state}{where}")
                style = {"running": "green", "exited": "dim"}.get(th.state, "")
                if cur:
                    style += " bold"
            t.append(line + "\n", style=style.strip())
        panel = self.panel("#threads")
        panel.border_title = f"processes / threads  (focus {s.focus})"
        panel.update(t)
        return True

    # -- after a stop: the policy's background run ---------------------------------------------
    def after_stop(self):
        if not self.multiprocess():
            return
        s = self.session
        if s.stop.exited:
            self.draw_processes()       # the last word on every process
        redraw = False
        if s.note and s.note not in self.message:
            self.message = (self.message + "; " if self.message else "") + s.note
            redraw = True
        if s.keep and s.start_background(lambda stop: self.call_from_thread(self._bg_stopped)):
            redraw = True
        if redraw:
            self.draw()

    def _bg_stopped(self):
        if self.busy:
            return          # a command stopped the run and goes on from there
        s = self.session
        msg = s.stop_message()
        self.message = s.note
        if s.stop.kind == "T" and "swbreak" in s.stop.info:
            self.message = (f"i{s.cur.num} breakpoint "
                            f"{s.symbols.describe(s.rip) or hex(s.rip)}")
        self.draw()
        if msg is not None:
            self.dialogs.append(msg)
            self.push_screen(_dialog()(*msg))
        self.after_stop()

    # -- the command line ---------------------------------------------------------------------
    def action_command_line(self):
        if not self.multiprocess() or self.query("#cmdline"):
            return
        box = Input(placeholder="focus SET | break SYM [in SET] | break-exec PATH SYM | "
                                "policy thread|process|all | help", id="cmdline")
        self.mount(box, before=self.query_one("#status"))
        box.focus()

    def on_input_submitted(self, event):
        if event.input.id != "cmdline":
            return
        line = event.value
        event.input.remove()
        self.command(line)

    def on_key(self, event):
        if event.key == "escape" and self.query("#cmdline"):
            self.query_one("#cmdline").remove()
            event.stop()

    def command(self, line):
        """Run a command-line command (continue and step as the keys do)."""
        s = self.session
        word = line.strip().split()[0] if line.strip() else ""
        if word in ("continue", "c"):
            return self.action_cont()
        if word in ("step", "s", "stepi", "si"):
            return self.action_step()
        if self.busy:
            self.message = "busy"
            return self.draw()
        try:
            msg = s.execute(line)
        except (FocusError, ValueError, IndexError) as e:
            msg = f"error: {e}"
        if word == "help":
            self.dialogs.append(("commands", msg))
            self.push_screen(_dialog()("commands", msg))
            msg = ""
        self.message = msg
        self.draw()

    # -- rows of the process panel -----------------------------------------------------------------
    def action_row(self, delta):
        if not self.multiprocess():
            return
        self.row_cursor += int(delta)
        self.draw_processes()

    def action_mark_row(self):
        if not self.multiprocess():
            return
        keys = self.process_row_keys()
        if not keys:
            return
        key = keys[min(self.row_cursor, len(keys) - 1)]
        marked = list(self.marked_rows)
        if key in marked:
            marked.remove(key)
        else:
            marked.append(key)
        self.marked_rows = tuple(marked)
        self.command("focus " + (",".join(marked) or "all"))

    def action_view_row(self):
        if not self.multiprocess():
            return
        keys = self.process_row_keys()
        if keys:
            key = keys[min(self.row_cursor, len(keys) - 1)]
            self.command(("thread " if ".t" in key else "inferior ") + key)
