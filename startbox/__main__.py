from startbox.cli import app

app(prog_name="startbox")
